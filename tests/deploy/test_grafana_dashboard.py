"""deploy/grafana: the dashboard is well-formed for Grafana, every panel queries the chosen
data source, and every query uses only catalogue metrics and parses as PromQL."""

from __future__ import annotations

import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest

from corral.metrics.catalogue import BY_NAME, family_of
from tests.deploy._promql import DEPLOY, SELECTOR, check_parses, names, problems

DASHBOARD = DEPLOY / "grafana" / "corral-dashboard.json"
DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
GRID_COLUMNS = 24


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def panels() -> list[dict[str, Any]]:
    return list(dashboard()["panels"])


def exprs() -> list[str]:
    return [t["expr"] for p in panels() for t in p["targets"]]


def test_top_level() -> None:
    board = dashboard()
    assert board["schemaVersion"] >= 36
    assert board["title"] and re.fullmatch(r"[a-z0-9-]{1,40}", board["uid"])
    assert board["panels"]
    assert "id" not in board or board["id"] is None  # an exported dashboard carries no db id


def test_variables() -> None:
    variables = {v["name"]: v for v in dashboard()["templating"]["list"]}
    source = variables["datasource"]
    assert source["type"] == "datasource" and source["query"] == "prometheus"
    queue = variables["queue"]
    assert queue["type"] == "query" and queue["datasource"] == DATASOURCE
    match = re.fullmatch(r"label_values\((\w+), queue\)", queue["query"]["query"])
    assert match and "queue" in BY_NAME[match.group(1)].labels
    assert queue["definition"] == queue["query"]["query"]
    assert queue["includeAll"] and queue["multi"] and queue["allValue"] == ".*"


def test_panel_ids_are_unique() -> None:
    ids = [p["id"] for p in panels()]
    assert all(isinstance(i, int) and i > 0 for i in ids)
    assert len(ids) == len(set(ids))


def test_grid_positions_fit_and_do_not_overlap() -> None:
    boxes = []
    for panel in panels():
        grid = panel["gridPos"]
        assert set(grid) == {"x", "y", "w", "h"}, panel["title"]
        assert all(isinstance(v, int) and v >= 0 for v in grid.values())
        assert grid["w"] > 0 and grid["h"] > 0 and grid["x"] + grid["w"] <= GRID_COLUMNS
        boxes.append((panel["title"], grid))
    for (a, g), (b, h) in itertools.combinations(boxes, 2):
        apart = (
            g["x"] + g["w"] <= h["x"]
            or h["x"] + h["w"] <= g["x"]
            or g["y"] + g["h"] <= h["y"]
            or h["y"] + h["h"] <= g["y"]
        )
        assert apart, f"{a} overlaps {b}"


@pytest.mark.parametrize("panel", panels(), ids=lambda p: p["title"])
def test_panel_queries_the_datasource_variable(panel: dict[str, Any]) -> None:
    assert panel["type"] in {"timeseries", "stat", "gauge", "table", "bargauge"}
    assert panel["title"] and panel.get("description")
    assert panel["datasource"] == DATASOURCE
    targets = panel["targets"]
    assert targets
    ref_ids = [t["refId"] for t in targets]
    assert len(ref_ids) == len(set(ref_ids)) and all(ref_ids)
    for target in targets:
        assert target["expr"].strip()
        assert target.get("datasource", DATASOURCE) == DATASOURCE


@pytest.mark.parametrize("expr", exprs())
def test_expr_uses_catalogue_metrics_filtered_by_queue(expr: str) -> None:
    assert problems(expr) == []
    assert all(":" not in n for n in names(expr)), "the dashboard needs no recording rules"
    for metric, body in SELECTOR.findall(expr):
        family = family_of(metric)
        if family is not None and "queue" in family.labels:
            assert 'queue=~"$queue"' in body, f"{metric} ignores the queue variable"


def test_exprs_parse(promtool: str, tmp_path: Path) -> None:
    grafana = {"$__rate_interval": "1m", "$queue": ".*"}
    substituted = []
    for expr in exprs():
        for variable, value in grafana.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, expr
        substituted.append(expr)
    check_parses(promtool, substituted, tmp_path)


def test_shows_what_the_issue_asks_for() -> None:
    """Depth, throughput, failures, p95 duration, wait time, oldest age, SLA, per worker."""
    used = {family_of(n).name for e in exprs() for n in names(e) if family_of(n)}  # type: ignore[union-attr]
    assert {
        "corral_queue_jobs",
        "corral_jobs_enqueued_total",
        "corral_jobs_finished_total",
        "corral_job_duration_seconds",
        "corral_job_wait_seconds",
        "corral_queue_oldest_waiting_age_seconds",
        "corral_queue_sla_attainment_ratio",
        "corral_worker_jobs_running",
    } <= used
    assert any("histogram_quantile(0.95" in e and "duration" in e for e in exprs())
    assert any("by (instance)" in e for e in exprs()), "a per-worker panel"
