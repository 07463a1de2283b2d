"""docs/observability.md keeps up with the catalogue and the rules: every metric in its table,
no metric the catalogue lacks, a section per alert, links that resolve."""

from __future__ import annotations

import re

import pytest

from corral.metrics.catalogue import BY_NAME, CATALOGUE, OUTCOMES, MetricFamily, family_of
from tests.deploy._promql import ROOT, anchors, load_rules, recorded_names

DOC = ROOT / "docs" / "observability.md"
TEXT = DOC.read_text()
TABLE_ROWS = [line for line in TEXT.splitlines() if line.startswith("| `corral_")]


@pytest.mark.parametrize("metric", CATALOGUE, ids=lambda m: m.name)
def test_table_lists_every_metric_with_its_kind_labels_and_source(metric: MetricFamily) -> None:
    (row,) = [r for r in TABLE_ROWS if r.startswith(f"| `{metric.name}` |")]
    cells = [c.strip() for c in row.strip("|").split("|")]
    _, kind, labels, meaning, source = cells
    assert kind == metric.kind
    assert re.findall(r"`(\w+)`", labels) == list(metric.all_labels)
    assert meaning
    assert source == metric.source


def test_names_no_metric_outside_the_catalogue() -> None:
    recorded = recorded_names()
    for match in re.finditer(r"\bcorral[_:][a-z0-9_:]*", TEXT):
        name = match.group()
        if TEXT.startswith("*", match.end()):
            continue  # a pattern such as corral_queue_*
        if ":" in name:
            assert name in recorded, name
        else:
            assert name in BY_NAME or family_of(name) is not None, name


def test_every_alert_has_a_section() -> None:
    alerts = [r["alert"] for g in load_rules()["groups"] for r in g["rules"] if "alert" in r]
    headings = re.findall(r"^### (\w+)$", TEXT, re.M)
    assert [h for h in headings if h.startswith("Corral")] == alerts  # same order as the file


def test_every_outcome_is_explained() -> None:
    for outcome in OUTCOMES:
        assert f"| `{outcome}` |" in TEXT, outcome


def test_links_to_other_docs_resolve() -> None:
    links = re.findall(r"\]\(([\w.]+\.md)?#([\w-]+)\)", TEXT)
    assert links
    for doc, anchor in links:
        target = (DOC.parent / doc).read_text() if doc else TEXT
        assert anchor in anchors(target), f"{doc}#{anchor}"


def test_says_what_is_not_built_yet() -> None:
    """Until the exporter lands, the doc must not pass it off as available."""
    for unbuilt in ("--metrics-port", "corral metrics serve", "--health-port", "set_sla"):
        paragraphs = [p for p in TEXT.split("\n\n") if unbuilt in p]
        assert paragraphs, unbuilt
        assert any("coming with the exporter" in p.lower() for p in paragraphs), unbuilt
