"""deploy/kubernetes: the examples agree with themselves and with Corral: probes on the port
and paths the worker's flags serve, a termination grace longer than the worker's, and
autoscaling on catalogue metrics with PromQL that parses."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from corral.metrics.catalogue import BY_NAME, family_of
from tests.deploy._promql import DEPLOY, check_parses, problems

K8S = DEPLOY / "kubernetes"


def load(name: str) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all((K8S / name).read_text()) if d]


def one(name: str, kind: str) -> dict[str, Any]:
    (doc,) = [d for d in load(name) if d["kind"] == kind]
    return doc


def flag(command: list[str], name: str) -> str:
    assert name in command, f"{name} missing from {command}"
    return command[command.index(name) + 1]


def container_port(container: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    (found,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(found)


WORKER = one("worker-deployment.yaml", "Deployment")
WORKER_POD = WORKER["spec"]["template"]
(WORKER_CONTAINER,) = WORKER_POD["spec"]["containers"]
COMMAND: list[str] = [str(part) for part in WORKER_CONTAINER["command"]]


def test_every_file_parses_with_kind_and_api_version() -> None:
    files = sorted(K8S.glob("*.yaml"))
    assert {f.name for f in files} >= {
        "worker-deployment.yaml",
        "hpa.yaml",
        "keda-scaledobject.yaml",
    }
    for path in files:
        for doc in load(path.name):
            assert doc["apiVersion"] and doc["kind"] and doc["metadata"]["name"], path.name


def test_worker_runs_corral_worker() -> None:
    assert COMMAND[:2] == ["corral", "worker"]
    assert ":" in COMMAND[2], "an app reference module:attribute"
    assert (
        WORKER["spec"]["selector"]["matchLabels"].items()
        <= WORKER_POD["metadata"]["labels"].items()
    )
    env = {e["name"]: e for e in WORKER_CONTAINER["env"]}
    assert env["CORRAL_EMBEDDED"]["value"] == "0"
    assert "secretKeyRef" in env["CORRAL_REDIS_URL"]["valueFrom"]


@pytest.mark.parametrize(
    ("probe", "path"),
    [("livenessProbe", "/livez"), ("readinessProbe", "/readyz"), ("startupProbe", "/livez")],
)
def test_probes_use_the_health_port_and_paths(probe: str, path: str) -> None:
    get = WORKER_CONTAINER[probe]["httpGet"]
    assert get["path"] == path
    assert container_port(WORKER_CONTAINER, get["port"]) == int(flag(COMMAND, "--health-port"))


def test_metrics_port_is_declared_and_scraped() -> None:
    port = int(flag(COMMAND, "--metrics-port"))
    assert container_port(WORKER_CONTAINER, "metrics") == port
    annotations = WORKER_POD["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(port)
    assert port != int(flag(COMMAND, "--health-port"))


def test_termination_grace_outlasts_the_worker_grace() -> None:
    """SIGTERM gives running jobs --grace, then hands the rest back: Kubernetes must not
    SIGKILL before, counting any preStop hook, which runs first."""
    grace = float(flag(COMMAND, "--grace"))
    pre_stop = WORKER_CONTAINER.get("lifecycle", {}).get("preStop")
    pre_stop_seconds = 0.0
    if pre_stop is not None:
        pre_stop_seconds = float(pre_stop["exec"]["command"][-1])  # `sleep N`
    assert WORKER_POD["spec"]["terminationGracePeriodSeconds"] >= grace + pre_stop_seconds + 10


def test_exporter_is_one_process_serving_queue_metrics() -> None:
    exporter = one("exporter-deployment.yaml", "Deployment")
    assert exporter["spec"]["replicas"] == 1
    (container,) = exporter["spec"]["template"]["spec"]["containers"]
    command = [str(part) for part in container["command"]]
    assert command[:3] == ["corral", "metrics", "serve"]
    port = int(flag(command, "--port"))
    assert container_port(container, "metrics") == port
    assert exporter["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == str(
        port
    )


def test_hpa_scales_the_worker_on_waiting_jobs() -> None:
    hpa = one("hpa.yaml", "HorizontalPodAutoscaler")
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", WORKER["metadata"]["name"])
    assert 1 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
    (metric,) = hpa["spec"]["metrics"]
    assert metric["type"] == "External"
    name = metric["external"]["metric"]["name"]
    labels = metric["external"]["metric"]["selector"]["matchLabels"]
    selector = name + "{" + ", ".join(f'{k}="{v}"' for k, v in labels.items()) + "}"
    assert problems(selector) == []
    assert family_of(name) is BY_NAME["corral_queue_jobs"] and labels["state"] == "waiting"
    assert metric["external"]["target"]["type"] == "AverageValue"
    assert float(metric["external"]["target"]["averageValue"]) > 0


def adapter_rules() -> list[dict[str, Any]]:
    config = one("hpa.yaml", "ConfigMap")["data"]["config.yaml"]
    return list(yaml.safe_load(config)["externalRules"])


def test_adapter_publishes_the_metric_the_hpa_reads() -> None:
    hpa = one("hpa.yaml", "HorizontalPodAutoscaler")
    wanted = hpa["spec"]["metrics"][0]["external"]["metric"]["name"]
    published = set()
    for rule in adapter_rules():
        assert problems(rule["seriesQuery"]) == []
        assert problems(rule["metricsQuery"]) == []
        published.add(rule["name"]["as"])
    assert wanted in published


def keda() -> dict[str, Any]:
    return one("keda-scaledobject.yaml", "ScaledObject")


def test_keda_scales_the_worker_on_oldest_waiting_age() -> None:
    scaled = keda()
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    assert scaled["spec"]["scaleTargetRef"]["name"] == WORKER["metadata"]["name"]
    spec = scaled["spec"]
    assert 0 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
    triggers = spec["triggers"]
    queries = [t["metadata"]["query"] for t in triggers]
    assert any("corral_queue_oldest_waiting_age_seconds" in q for q in queries)
    for trigger in triggers:
        assert trigger["type"] == "prometheus"
        assert trigger["metricType"] in {"Value", "AverageValue"}
        assert float(trigger["metadata"]["threshold"]) > 0
        assert trigger["metadata"]["ignoreNullValues"] == "false"
        assert problems(trigger["metadata"]["query"]) == []
    if "fallback" in spec:  # KEDA applies a fallback to AverageValue triggers only
        assert any(t["metricType"] == "AverageValue" for t in triggers)


def test_autoscaling_queries_parse(promtool: str, tmp_path: Path) -> None:
    queries = [t["metadata"]["query"] for t in keda()["spec"]["triggers"]]
    for rule in adapter_rules():
        queries.append(rule["seriesQuery"])
        queries.append(
            rule["metricsQuery"]
            .replace("<<.Series>>", "corral_queue_jobs")
            .replace("<<.LabelMatchers>>", 'queue="recipes",state="waiting"')
            .replace("<<.GroupBy>>", "queue")
        )
    check_parses(promtool, queries, tmp_path)
