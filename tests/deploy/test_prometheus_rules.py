"""deploy/prometheus: the alert rules load in Prometheus, fire and stay quiet as their unit
tests say (run by the real promtool), and use only what the catalogue defines."""

from __future__ import annotations

import re
import subprocess
from typing import Any

import pytest
import yaml

from corral.metrics.catalogue import ALLOWED_LABELS
from tests.deploy._promql import (
    RANGE,
    RULES,
    STRING,
    anchors,
    load_rules,
    problems,
    recorded_names,
)

ROOT = RULES.parents[2]
TESTS = RULES.with_name("corral-alerts.test.yml")
ISSUE_ALERTS = {
    "CorralQueueBacklog",  # backlog by oldest age
    "CorralQueueStalled",  # old waiting jobs and no throughput
    "CorralHighFailureRate",
    "CorralDeadLetterGrowth",
    "CorralNoWorkers",
    "CorralSLAMissed",
    "CorralLeaseExpirySpike",
}
SEVERITIES = {"critical", "warning", "info"}


def alerts() -> list[dict[str, Any]]:
    return [r for g in load_rules()["groups"] for r in g["rules"] if "alert" in r]


def rule_tests() -> list[dict[str, Any]]:
    return list(yaml.safe_load(TESTS.read_text())["tests"])


def test_promtool_check_rules(promtool: str) -> None:
    proc = subprocess.run([promtool, "check", "rules", str(RULES)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_promtool_test_rules(promtool: str) -> None:
    proc = subprocess.run([promtool, "test", "rules", str(TESTS)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout


def test_the_issue_alerts_are_all_there() -> None:
    names = [a["alert"] for a in alerts()]
    assert len(names) == len(set(names))
    assert set(names) >= ISSUE_ALERTS
    assert all(name.startswith("Corral") for name in names)


@pytest.mark.parametrize("alert", alerts(), ids=lambda a: a["alert"])
def test_alert_has_severity_annotations_and_a_runbook(alert: dict[str, Any]) -> None:
    assert alert["labels"]["severity"] in SEVERITIES
    annotations = alert["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    assert re.fullmatch(r"\d+[smh]", alert["for"]), "every alert waits before firing"
    doc, _, anchor = annotations["runbook_url"].partition("#")
    assert anchor in anchors((ROOT / doc).read_text()), annotations["runbook_url"]


@pytest.mark.parametrize(
    "rule",
    [r for g in load_rules()["groups"] for r in g["rules"]],
    ids=lambda r: r.get("alert") or r["record"],
)
def test_rule_uses_only_catalogue_metrics(rule: dict[str, Any]) -> None:
    assert problems(rule["expr"], recorded_names()) == []


def test_thresholds_live_in_one_group_and_alerts_hold_no_numbers() -> None:
    """Users edit numbers in one place: the first group, one ``vector(N)`` each. The alerts
    compare only against those (or the queue's own SLA series), and 0 and 1."""
    first, *rest = load_rules()["groups"]
    assert first["name"] == "corral-thresholds"
    thresholds = set()
    for rule in first["rules"]:
        assert rule["record"].startswith("corral:threshold:")
        assert re.fullmatch(r"vector\([0-9.]+\)", rule["expr"].strip()), rule
        thresholds.add(rule["record"])
    used = set()
    for group in rest:
        for rule in group["rules"]:
            assert not rule.get("record", "").startswith("corral:threshold:")
            bare = RANGE.sub("[]", STRING.sub('""', rule["expr"]))
            used |= set(re.findall(r"corral:threshold:\w+", bare))
            numbers = set(re.findall(r"(?<![\w.])\d+(?:\.\d+)?(?![\w.])", bare))
            assert numbers <= {"0", "1"}, f"{rule.get('alert', rule.get('record'))}: {numbers}"
    assert used == thresholds, "every threshold is used, and only defined ones"


def test_rule_test_series_exist_in_the_catalogue() -> None:
    recorded = recorded_names()
    for case in rule_tests():
        for series in case["input_series"]:
            assert problems(series["series"], recorded) == [], series["series"]
        for check in case.get("alert_rule_test", []):
            for expected in check["exp_alerts"]:
                assert set(expected["exp_labels"]) <= ALLOWED_LABELS | {"severity"}


def test_every_alert_is_tested_firing_and_not_firing() -> None:
    fires: set[str] = set()
    quiet: set[str] = set()
    for case in rule_tests():
        for check in case.get("alert_rule_test", []):
            (fires if check["exp_alerts"] else quiet).add(check["alertname"])
    names = {a["alert"] for a in alerts()}
    assert names - fires == set(), "alerts never shown firing"
    assert names - quiet == set(), "alerts never shown quiet"
