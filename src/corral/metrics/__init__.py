"""Observability (issue 15). For now the catalogue of metric families, which the exporter, the
alert rules, the dashboard and the autoscaling examples in ``deploy/`` are checked against.

Importing this package loads no prometheus-client or OpenTelemetry: those come with the
``corral[metrics]`` extra and are imported by the modules that serve metrics, when they run.
"""

from corral.metrics.catalogue import BY_NAME, CATALOGUE, Kind, MetricFamily, Source, family_of

__all__ = ["BY_NAME", "CATALOGUE", "Kind", "MetricFamily", "Source", "family_of"]
