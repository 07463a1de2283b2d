"""The benchmark suite: Corral, BullMQ (Node) and bullmq (Python), same scenarios, same Redis.

    python -m bench [--runs 3] [--quick] [--systems corral,corral-asyncio,node,python]

Installs the peers into bench-only places (bench/.venv-peers, bench/peers/node/node_modules),
starts its own Redis (Debian's redis-server if present, else the embedded Valkey) on a free
port, and runs every scenario --runs times. The systems take turns within each run (Corral,
then Corral on plain asyncio, then BullMQ Node, then bullmq Python, then again), so a slow
moment of a noisy machine falls on all of them rather than on one; FLUSHALL before each
measurement. Prints one table of medians with their spread, ratios to the peers and CPU µs per
job, then the issue's targets with the figure each one got, and writes the same to
bench/results/latest.json (and .txt).

"Corral" is Corral as its CLI runs it: on uvloop when installed (it is a dependency on Linux
and macOS). "Corral asyncio" is the same code on the standard event loop (CORRAL_EVENT_LOOP=
asyncio), shown so the loop's share is visible.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis

from corral.embedded import EmbeddedServer, ServerOptions, find_server_binary, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_VENV = HERE / ".venv-peers"
NODE_DIR = HERE / "peers" / "node"
ALL_SYSTEMS = ("corral", "corral-asyncio", "node", "python")
LABELS = {
    "corral": "Corral",
    "corral-asyncio": "Corral asyncio",
    "node": "BullMQ Node",
    "python": "bullmq Py",
}


def setup_peers(systems: list[str]) -> list[str]:
    """Install what the peers need; returns the systems that are ready."""
    ready = [s for s in systems if s.startswith("corral")]
    if "node" in systems:
        if shutil.which("npm") and shutil.which("node"):
            if not (NODE_DIR / "node_modules" / "bullmq").exists():
                subprocess.run(
                    ["npm", "install", "--no-audit", "--no-fund", "--silent"],
                    cwd=NODE_DIR,
                    check=True,
                )
            ready.append("node")
        else:
            print("node/npm not found: skipping BullMQ for Node", file=sys.stderr)
    if "python" in systems:
        py = PEER_VENV / "bin" / "python"
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        code = subprocess.run([str(py), "-c", "import bullmq"], capture_output=True).returncode
        if code != 0:
            subprocess.run([str(py), "-m", "pip", "install", "-q", "bullmq>=2,<4"], check=True)
        ready.append("python")
    return [s for s in ALL_SYSTEMS if s in ready]


def command(system: str) -> list[str]:
    if system == "corral":
        return [sys.executable, "-m", "bench.corral_bench"]
    if system == "corral-asyncio":
        return [sys.executable, "-m", "bench.corral_bench", "--loop", "asyncio"]
    if system == "python":
        return [str(PEER_VENV / "bin" / "python"), str(HERE / "peers" / "bullmq_py_bench.py")]
    return ["node", str(NODE_DIR / "bullmq_bench.mjs")]


def _args(system: str, url: str, scenario: str, opts: dict[str, Any]) -> list[str]:
    args = [*command(system), "--url", url, "--scenario", scenario, "--queue", "bench"]
    for key, value in opts.items():
        if value is True:
            args.append("--" + key)
        elif value is not None and value is not False:
            args += ["--" + key, str(value)]
    return args


def call(system: str, url: str, scenario: str, **opts: Any) -> dict[str, Any]:
    proc = subprocess.run(
        _args(system, url, scenario, opts), capture_output=True, text=True, cwd=ROOT, timeout=3600
    )
    if proc.returncode != 0:
        raise RuntimeError(f"{system} {scenario} failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def multi_drain(
    system: str, url: str, processes: int, jobs: int, concurrency: int, work_us: float = 0.0
) -> dict[str, Any]:
    """Fill, then drain with ``processes`` worker processes that start at the same moment."""
    call(system, url, "fill", jobs=jobs)
    start = time.time() + 2.0 + processes  # every process connected and waiting
    opts: dict[str, Any] = {"concurrency": concurrency, "start": start, "jobs": jobs}
    if work_us:
        opts["work-us"] = work_us
    procs = [
        subprocess.Popen(
            _args(system, url, "drain", opts), stdout=subprocess.PIPE, text=True, cwd=ROOT
        )
        for _ in range(processes)
    ]
    outs = [
        json.loads((p.communicate(timeout=3600)[0] or "{}").strip().splitlines()[-1]) for p in procs
    ]
    done = sum(o["done"] for o in outs)
    wall = max(o["ended"] for o in outs) - start
    cpu = sum(o["cpu_us_per_job"] * o["done"] for o in outs) / max(done, 1)
    return {"jobs_per_s": done / wall, "cpu_us_per_job": cpu}


def median_of(samples: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in samples[0]:
        values = [s[key] for s in samples if isinstance(s.get(key), int | float)]
        if values:
            med = statistics.median(values)
            out[key] = med
            if len(values) > 1 and med:
                out[key + "_spread_pct"] = round((max(values) - min(values)) / abs(med) * 100, 1)
    return out


@dataclass
class Scenario:
    name: str
    systems: tuple[str, ...]
    measure: Callable[[str], dict[str, Any]]
    min_runs: int = 1  # short, noisy measurements get more runs


def scenarios(url: str, scale: int, backlog: int, c: int) -> list[Scenario]:
    n_single, n_bulk, n_drain = 5000 // scale, 50_000 // scale, 20_000 // scale
    everyone = ALL_SYSTEMS
    corral = ("corral", "corral-asyncio")

    def groups(grouped: bool) -> Callable[[str], dict[str, Any]]:
        def run(s: str) -> dict[str, Any]:
            call(s, url, "fill", jobs=10_000 // scale, grouped=grouped)
            return call(s, url, "drain", jobs=10_000 // scale, concurrency=c)

        return run

    return [
        Scenario(
            "enqueue single", everyone, lambda s: call(s, url, "enqueue-single", jobs=n_single)
        ),
        Scenario(
            "enqueue 100 producers",
            everyone,
            lambda s: call(s, url, "enqueue-concurrent", jobs=n_bulk // 2, producers=100),
        ),
        Scenario(
            "enqueue bulk (1,000)", everyone, lambda s: call(s, url, "enqueue-bulk", jobs=n_bulk)
        ),
        Scenario("drain 1 process", everyone, lambda s: multi_drain(s, url, 1, n_drain, c)),
        Scenario("drain 2 processes", everyone, lambda s: multi_drain(s, url, 2, n_drain, c)),
        Scenario(
            "drain 1 proc, 100µs handlers",
            ("corral",),
            lambda s: multi_drain(s, url, 1, n_drain // 2, c, 100),
        ),
        Scenario(
            "drain 2 procs, 100µs handlers",
            ("corral",),
            lambda s: multi_drain(s, url, 2, n_drain // 2, c, 100),
        ),
        # 1,000 samples: a p99 of fewer is one or two hiccups of the machine
        Scenario("latency", everyone, lambda s: call(s, url, "latency", jobs=1000 // scale)),
        Scenario("delayed start", corral, lambda s: call(s, url, "delayed", jobs=1000 // scale)),
        Scenario(
            "memory per job",
            ("corral", "node"),
            lambda s: call(s, url, "memory", jobs=10_000, payload=100),
        ),
        Scenario("drain 10k groups of 1", corral, groups(True)),
        Scenario("drain 10k ungrouped", corral, groups(False)),
        Scenario(
            "backlog 10,000",
            ("corral",),
            lambda s: call(s, url, "backlog", jobs=10_000, backlog=10_000, concurrency=c),
            min_runs=5,
        ),
        Scenario(
            f"backlog {backlog // scale:,}",
            ("corral",),
            lambda s: call(s, url, "backlog", jobs=10_000, backlog=backlog // scale, concurrency=c),
            min_runs=5,
        ),
    ]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smaller job counts, one run")
    p.add_argument("--systems", default=",".join(ALL_SYSTEMS))
    p.add_argument("--only", default="", help="comma-separated scenario names (default: all)")
    p.add_argument("--backlog", type=int, default=1_000_000)
    p.add_argument("--concurrency", type=int, default=100)
    a = p.parse_args()
    runs = 1 if a.quick else a.runs
    scale = 5 if a.quick else 1
    systems = setup_peers(a.systems.split(","))

    binary = Path(shutil.which("redis-server") or find_server_binary())
    server = EmbeddedServer(ServerOptions(port=free_port()), binary=binary).start()
    client = redis.Redis.from_url(server.url)
    version = str(client.info("server").get("redis_version"))
    results: dict[str, dict[str, Any]] = {}
    only = {n.strip() for n in a.only.split(",") if n.strip()}
    t0 = time.monotonic()
    try:
        for sc in scenarios(server.url, scale, a.backlog, a.concurrency):
            if only and sc.name not in only:
                continue
            taking = [s for s in sc.systems if s in systems]
            samples: dict[str, list[dict[str, Any]]] = {s: [] for s in taking}
            for _ in range(runs if a.quick else max(runs, sc.min_runs)):
                for system in taking:  # the systems take turns within each run
                    client.flushall()
                    samples[system].append(sc.measure(system))
            for system in taking:
                results.setdefault(sc.name, {})[system] = median_of(samples[system])
                figures = json.dumps(results[sc.name][system])
                print(f"  {sc.name:<24} {system:<15} {figures}", file=sys.stderr)
    finally:
        client.close()
        server.stop()
    report(results, version, systems, runs, time.monotonic() - t0)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def _get(results: dict[str, dict[str, Any]], scenario: str, system: str, key: str) -> Any:
    return results.get(scenario, {}).get(system, {}).get(key)


def targets(results: dict[str, dict[str, Any]], backlog_name: str) -> list[tuple[str, str, bool]]:
    """The issue's targets: (target, what was measured, met)."""
    out: list[tuple[str, str, bool]] = []

    def rate(scenario: str, system: str = "corral") -> float | None:
        value = _get(results, scenario, system, "jobs_per_s")
        return float(value) if value is not None else None

    def versus(label: str, a: float | None, b: float | None, floor: float) -> None:
        if a and b:
            out.append((label, f"{a / b:.2f}x ({a:,.0f} vs {b:,.0f}/s)", a / b >= floor))

    versus(
        "drain 1 process >= 2x BullMQ Node",
        rate("drain 1 process"),
        rate("drain 1 process", "node"),
        2,
    )
    versus(
        "drain 1 process >= 8x bullmq Py",
        rate("drain 1 process"),
        rate("drain 1 process", "python"),
        8,
    )
    versus(
        "drain 2 processes >= 1.3x 1 process (no-op)",
        rate("drain 2 processes"),
        rate("drain 1 process"),
        1.3,
    )
    versus(
        "drain 2 processes >= 1.3x 1 process (100µs handlers)",
        rate("drain 2 procs, 100µs handlers"),
        rate("drain 1 proc, 100µs handlers"),
        1.3,
    )
    versus(
        "enqueue single >= 1x BullMQ Node",
        rate("enqueue single"),
        rate("enqueue single", "node"),
        1,
    )
    versus(
        "100 producers >= 3x BullMQ Node's single add",
        rate("enqueue 100 producers"),
        rate("enqueue single", "node"),
        3,
    )
    bulk = rate("enqueue bulk (1,000)")
    if bulk:
        out.append(("enqueue bulk >= 40,000 jobs/s", f"{bulk:,.0f}/s", bulk >= 40_000))
    for key, label, limit in (
        ("p50_ms", "pick-up p50 <= 1 ms", 1.0),
        ("p99_ms", "pick-up p99 <= 5 ms", 5.0),
    ):
        v = _get(results, "latency", "corral", key)
        if v is not None:
            out.append((label, f"{v:.2f} ms", v <= limit))
    v = _get(results, "delayed start", "corral", "p99_ms")
    if v is not None:
        out.append(("delayed jobs start within 5 ms (p99)", f"{v:.2f} ms", v <= 5.0))
    for key, label in (("enqueue_per_s", "enqueue"), ("drain_per_s", "drain")):
        small = _get(results, "backlog 10,000", "corral", key)
        big = _get(results, backlog_name, "corral", key)
        if small and big:
            out.append(
                (
                    f"{label} with {backlog_name[8:]} waiting within 20% of 10,000",
                    f"{big / small - 1:+.0%} ({big:,.0f} vs {small:,.0f}/s)",
                    big >= 0.8 * small,
                )
            )
    versus(
        "10k groups of 1 drain >= 0.5x ungrouped",
        rate("drain 10k groups of 1"),
        rate("drain 10k ungrouped"),
        0.5,
    )
    for key, label in (
        ("waiting_bytes_per_job", "waiting"),
        ("completed_bytes_per_job", "completed"),
    ):
        mine = _get(results, "memory per job", "corral", key)
        theirs = _get(results, "memory per job", "node", key)
        if mine is not None and theirs is not None:
            out.append(
                (
                    f"bytes per {label} job < BullMQ Node's",
                    f"{mine:,.0f} vs {theirs:,.0f}",
                    mine < theirs,
                )
            )
    return out


def report(
    results: dict[str, dict[str, Any]], version: str, systems: list[str], runs: int, wall: float
) -> None:
    shown = [s for s in ALL_SYSTEMS if s in systems]
    lines = [
        f"Redis {version} on {os.cpu_count()} cores, Python {sys.version.split()[0]}; medians of "
        f"{runs} run(s), systems taking turns (spread = (max-min)/median); {wall / 60:.1f} min",
        "",
    ]
    head = f"{'scenario':<26}" + "".join(f"{LABELS[s]:>22}" for s in shown)
    peers = [s for s in ("node", "python") if s in shown]
    head += "".join(f"{'vs ' + LABELS[s].split()[-1]:>10}" for s in peers)
    lines += [head, "-" * len(head)]

    def cell(r: dict[str, Any] | None, key: str, fmt: str) -> str:
        if not r or key not in r:
            return "-"
        text = format(r[key], fmt)
        spread = r.get(key + "_spread_pct")
        cpu = r.get("cpu_us_per_job")
        extra = f" ±{spread:.0f}%" if spread is not None else ""
        if cpu is not None and key.endswith("per_s"):
            extra += f" {cpu:.0f}µs"
        return text + extra

    def row(label: str, by: dict[str, Any], key: str, fmt: str, ratios: bool) -> None:
        text = f"{label:<26}" + "".join(f"{cell(by.get(s), key, fmt):>22}" for s in shown)
        if ratios:
            mine = (by.get("corral") or {}).get(key)
            text += "".join(f"{ratio(mine, (by.get(s) or {}).get(key)):>10}" for s in peers)
        lines.append(text)

    backlog_name = "backlog 10,000"
    for name, by in results.items():
        if name.startswith("backlog") and name != "backlog 10,000":
            backlog_name = name
        sample = next(iter(by.values()))
        if "jobs_per_s" in sample:
            row(name, by, "jobs_per_s", ",.0f", True)
        elif "p50_ms" in sample:
            for q in ("p50_ms", "p99_ms"):
                row(f"{name} {q[:3]} (ms)", by, q, ".2f", False)
        elif "waiting_bytes_per_job" in sample:
            for q in ("waiting_bytes_per_job", "completed_bytes_per_job"):
                row(q.replace("_", " "), by, q, ",.0f", False)
        elif "drain_per_s" in sample:
            row(f"{name} enqueue/s", by, "enqueue_per_s", ",.0f", False)
            row(f"{name} drain/s", by, "drain_per_s", ",.0f", False)
    lines += ["", "jobs/s cells: median ±spread, then the worker's/producer's CPU µs per job", ""]
    checks = targets(results, backlog_name)
    if checks:
        lines.append("targets (issue #7)")
        for label, got, met in checks:
            lines.append(f"  {'met' if met else 'NOT MET':<8} {label:<48} {got}")
    text = "\n".join(lines)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    payload = {
        "redis": version,
        "python": sys.version.split()[0],
        "systems": systems,
        "runs": runs,
        "results": results,
        "targets": [{"target": t, "measured": g, "met": m} for t, g, m in checks],
    }
    (out / "latest.json").write_text(json.dumps(payload, indent=2))
    (out / "latest.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
