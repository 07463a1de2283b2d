"""The metric catalogue follows Prometheus naming rules and covers what issue 15 asks for."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from corral.metrics import catalogue
from corral.metrics.catalogue import (
    ALLOWED_LABELS,
    BY_NAME,
    CATALOGUE,
    OUTCOMES,
    Kind,
    MetricFamily,
    Source,
    family_of,
)
from corral.models import JobState

NAME = re.compile(r"^corral_[a-z][a-z0-9]*(_[a-z0-9]+)*$")
# Families that measure a duration or an age must say so in seconds; words that give them away.
TIME_WORDS = ("duration", "age", "wait", "latency", "elapsed", "time", "target")

ids = [m.name for m in CATALOGUE]


@pytest.mark.parametrize("metric", CATALOGUE, ids=ids)
def test_name_is_snake_case_with_prefix(metric: MetricFamily) -> None:
    assert NAME.match(metric.name), metric.name


@pytest.mark.parametrize("metric", CATALOGUE, ids=ids)
def test_total_on_counters_and_only_on_counters(metric: MetricFamily) -> None:
    assert metric.name.endswith("_total") == (metric.kind is Kind.COUNTER), metric.name


@pytest.mark.parametrize("metric", CATALOGUE, ids=ids)
def test_durations_are_in_seconds(metric: MetricFamily) -> None:
    words = metric.name.removesuffix("_total").split("_")
    if any(word in TIME_WORDS for word in words) and not metric.name.endswith("_ratio"):
        assert metric.name.endswith("_seconds"), metric.name
    assert not re.search(r"_(milliseconds|ms|minutes|hours|percent)\b", metric.name)


@pytest.mark.parametrize("metric", CATALOGUE, ids=ids)
def test_ratios_and_units_are_last(metric: MetricFamily) -> None:
    """A unit ends the name (before ``_total``): ``_seconds_total``, never ``_seconds_x``."""
    stem = metric.name.removesuffix("_total")
    for unit in ("seconds", "ratio", "bytes"):
        if f"_{unit}_" in stem + "_":
            assert stem.endswith(f"_{unit}"), metric.name


@pytest.mark.parametrize("metric", CATALOGUE, ids=ids)
def test_labels_are_from_the_allowed_set(metric: MetricFamily) -> None:
    assert set(metric.all_labels) <= ALLOWED_LABELS, metric.all_labels
    assert len(set(metric.all_labels)) == len(metric.all_labels)
    assert "group" not in metric.labels, "the tenant label is opt-in only"
    assert set(metric.label_values) <= set(metric.labels)
    for label in ("outcome", "state"):
        if label in metric.labels:
            assert metric.label_values.get(label), f"{metric.name}: {label} needs a closed set"


@pytest.mark.parametrize("metric", CATALOGUE, ids=ids)
def test_help_and_kind_specific_fields(metric: MetricFamily) -> None:
    assert metric.help.strip() and metric.help[0].isupper(), metric.name
    assert (metric.kind is Kind.HISTOGRAM) == bool(metric.buckets), metric.name
    if metric.buckets:
        assert list(metric.buckets) == sorted(set(metric.buckets))
        assert metric.name.endswith("_seconds")
    needs_mode = metric.kind is Kind.GAUGE and metric.source is Source.WORKER
    assert (metric.multiprocess_mode is not None) == needs_mode, metric.name
    if metric.source is Source.EXPORTER:
        assert "queue" in metric.labels, "exporter families are per queue"


def test_names_are_unique_and_series_do_not_collide() -> None:
    assert len(BY_NAME) == len(CATALOGUE)
    series = [s for m in CATALOGUE for s in m.series_names]
    assert len(series) == len(set(series))
    assert family_of("corral_job_wait_seconds_bucket") is catalogue.JOB_WAIT
    assert family_of("corral_job_wait_seconds") is None  # a histogram has no bare series
    assert family_of("corral_jobs_finished_total") is catalogue.JOBS_FINISHED
    assert family_of("up") is None


def test_covers_every_family_the_issue_names() -> None:
    named = {
        "corral_jobs_enqueued_total",
        "corral_jobs_finished_total",
        "corral_job_duration_seconds",
        "corral_job_wait_seconds",
        "corral_queue_oldest_waiting_age_seconds",
        "corral_dead_oldest_age_seconds",
    }
    assert named <= set(BY_NAME)
    states = set(catalogue.QUEUE_JOBS.label_values["state"])
    assert {"waiting", "active", "delayed", "dead"} <= states  # gauges per queue
    for family in (
        "corral_queue_paused",
        "corral_queue_groups_waiting",
        "corral_workers_alive",
        "corral_lease_expiries_total",
        "corral_fencing_rejections_total",
        "corral_queue_sla_target_seconds",
        "corral_queue_sla_attainment_ratio",
    ):
        assert family in BY_NAME


def test_outcomes_partition_claims() -> None:
    """The issue's outcomes, less ``failed`` (it would double count retried or dead), plus the
    worker's own ``rescheduled`` and ``released``; the failure outcomes are among them."""
    assert set(catalogue.JOBS_FINISHED.label_values["outcome"]) == set(OUTCOMES)
    assert {"completed", "retried", "dead", "cancelled", "lease_lost"} <= set(OUTCOMES)
    assert "failed" not in OUTCOMES
    assert set(catalogue.FAILURE_OUTCOMES) <= set(OUTCOMES)
    assert len(OUTCOMES) == len(set(OUTCOMES))


def test_state_values_follow_the_job_model() -> None:
    assert set(catalogue.QUEUE_JOBS_ENDED.label_values["state"]) == {
        s.value for s in JobState if s.terminal
    }
    assert "cancelled" not in catalogue.QUEUE_JOBS.label_values["state"]  # kept in the dead set


def test_wait_buckets_hold_common_sla_targets() -> None:
    for target in (30, 60, 120, 300, 600, 1800, 3600, 7200, 86400):
        assert target in catalogue.WAIT_BUCKETS


def test_importing_the_catalogue_loads_no_metrics_library() -> None:
    code = (
        "import sys, corral.metrics, corral.metrics.catalogue\n"
        "heavy = [m for m in sys.modules if m.split('.')[0] in "
        "('prometheus_client', 'opentelemetry')]\n"
        "assert not heavy, heavy\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
