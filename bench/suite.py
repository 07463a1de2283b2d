"""The benchmark suite: Corral, BullMQ (Node) and bullmq (Python), same scenarios, same Redis.

    python -m bench [--runs 3] [--quick] [--systems corral,node,python] [--backlog 1000000]

Installs the peers into bench-only places (bench/.venv-peers, bench/peers/node/node_modules),
starts its own Redis (Debian's redis-server if present, else the embedded Valkey) on a free
port, runs every scenario --runs times per system (FLUSHALL between runs), and prints one table
of medians with their spread, ratios to the peers and CPU µs per job. Writes the same to
bench/results/latest.json.
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
from pathlib import Path
from typing import Any

import redis

from corral.embedded import EmbeddedServer, ServerOptions, find_server_binary, free_port

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PEER_VENV = HERE / ".venv-peers"
NODE_DIR = HERE / "peers" / "node"


def setup_peers(systems: list[str]) -> list[str]:
    """Install what the peers need; returns the systems that are ready."""
    ready = ["corral"] if "corral" in systems else []
    if "python" in systems:
        py = PEER_VENV / "bin" / "python"
        if not py.exists():
            subprocess.run([sys.executable, "-m", "venv", str(PEER_VENV)], check=True)
        code = subprocess.run([str(py), "-c", "import bullmq"], capture_output=True).returncode
        if code != 0:
            subprocess.run([str(py), "-m", "pip", "install", "-q", "bullmq>=2,<4"], check=True)
        ready.append("python")
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
    return ready


def command(system: str) -> list[str]:
    if system == "corral":
        return [sys.executable, "-m", "bench.corral_bench"]
    if system == "python":
        return [str(PEER_VENV / "bin" / "python"), str(HERE / "peers" / "bullmq_py_bench.py")]
    return ["node", str(NODE_DIR / "bullmq_bench.mjs")]


def call(system: str, url: str, scenario: str, **opts: Any) -> dict[str, Any]:
    args = [*command(system), "--url", url, "--scenario", scenario, "--queue", "bench"]
    for key, value in opts.items():
        if value is True:
            args.append("--" + key)
        elif value is not None and value is not False:
            args += ["--" + key, str(value)]
    proc = subprocess.run(args, capture_output=True, text=True, cwd=ROOT, timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"{system} {scenario} failed: {proc.stderr[-2000:]}")
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def multi_drain(
    system: str, url: str, processes: int, jobs: int, concurrency: int
) -> dict[str, Any]:
    call(system, url, "fill", jobs=jobs)
    start = time.time() + 2.0 + processes  # every process connected and waiting
    args = [
        *command(system),
        "--url",
        url,
        "--scenario",
        "drain",
        "--queue",
        "bench",
        "--concurrency",
        str(concurrency),
        "--start",
        str(start),
        "--jobs",
        str(jobs),
    ]
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(processes)
    ]
    outs = [
        json.loads((p.communicate(timeout=1800)[0] or "{}").strip().splitlines()[-1]) for p in procs
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--quick", action="store_true", help="smaller job counts, one run")
    p.add_argument("--systems", default="corral,node,python")
    p.add_argument("--backlog", type=int, default=1_000_000)
    p.add_argument("--concurrency", type=int, default=100)
    a = p.parse_args()
    runs = 1 if a.quick else a.runs
    scale = 5 if a.quick else 1
    systems = setup_peers(a.systems.split(","))

    binary = Path(shutil.which("redis-server") or find_server_binary())
    server = EmbeddedServer(ServerOptions(port=free_port()), binary=binary).start()
    url = server.url
    client = redis.Redis.from_url(url)
    version = client.info("server").get("redis_version")
    results: dict[str, dict[str, Any]] = {}

    def measure(name: str, system: str, fn: Callable[[], dict[str, Any]]) -> None:
        samples = []
        for _ in range(runs):
            client.flushall()
            samples.append(fn())
        results.setdefault(name, {})[system] = median_of(samples)
        print(f"  {name:<22} {system:<7} {json.dumps(results[name][system])}", file=sys.stderr)

    n_single, n_bulk, n_drain = 5000 // scale, 50_000 // scale, 20_000 // scale
    c = a.concurrency
    try:
        for system in systems:
            measure(
                "enqueue single",
                system,
                lambda s=system: call(s, url, "enqueue-single", jobs=n_single),
            )
            measure(
                "enqueue 100 producers",
                system,
                lambda s=system: call(
                    s, url, "enqueue-concurrent", jobs=n_bulk // 2, producers=100
                ),
            )
            measure(
                "enqueue bulk (1,000)",
                system,
                lambda s=system: call(s, url, "enqueue-bulk", jobs=n_bulk),
            )
            measure("drain 1 process", system, lambda s=system: multi_drain(s, url, 1, n_drain, c))
            measure(
                "drain 2 processes", system, lambda s=system: multi_drain(s, url, 2, n_drain, c)
            )
            measure("latency", system, lambda s=system: call(s, url, "latency", jobs=300 // scale))
            if system != "python":
                measure(
                    "memory per job",
                    system,
                    lambda s=system: call(s, url, "memory", jobs=10_000, payload=100),
                )
        if "corral" in systems:
            measure(
                "delayed start", "corral", lambda: call("corral", url, "delayed", jobs=200 // scale)
            )
            measure(
                "drain 10k groups of 1",
                "corral",
                lambda: (
                    call("corral", url, "fill", jobs=10_000, grouped=True),
                    call("corral", url, "drain", jobs=10_000, concurrency=c),
                )[1],
            )
            measure(
                "drain 10k ungrouped",
                "corral",
                lambda: (
                    call("corral", url, "fill", jobs=10_000),
                    call("corral", url, "drain", jobs=10_000, concurrency=c),
                )[1],
            )
            for backlog in (10_000, a.backlog // scale):
                measure(
                    f"backlog {backlog:,}",
                    "corral",
                    lambda n=backlog: call(
                        "corral", url, "backlog", jobs=10_000, backlog=n, concurrency=c
                    ),
                )
    finally:
        client.close()
        server.stop()
    report(results, version, systems)


def ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.1f}x" if a and b else "-"


def report(results: dict[str, dict[str, Any]], version: str, systems: list[str]) -> None:
    lines = [f"Redis {version} on {os.cpu_count()} cores; medians (spread = (max-min)/median)", ""]
    head = f"{'scenario':<24}{'Corral':>22}{'BullMQ Node':>22}{'bullmq Py':>22}"
    head += f"{'vs Node':>9}{'vs Py':>8}"
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

    for name, by in results.items():
        c, n, p = by.get("corral"), by.get("node"), by.get("python")
        if "jobs_per_s" in (c or n or p or {}):
            lines.append(
                f"{name:<24}{cell(c, 'jobs_per_s', ',.0f'):>22}{cell(n, 'jobs_per_s', ',.0f'):>22}"
                f"{cell(p, 'jobs_per_s', ',.0f'):>22}"
                f"{ratio((c or {}).get('jobs_per_s'), (n or {}).get('jobs_per_s')):>9}"
                f"{ratio((c or {}).get('jobs_per_s'), (p or {}).get('jobs_per_s')):>8}"
            )
        elif "p50_ms" in (c or n or p or {}):
            for q in ("p50_ms", "p99_ms"):
                lines.append(
                    f"{name + ' ' + q[:3]:<24}{cell(c, q, '.2f'):>22}{cell(n, q, '.2f'):>22}"
                    f"{cell(p, q, '.2f'):>22}"
                )
        elif "waiting_bytes_per_job" in (c or n or {}):
            for q in ("waiting_bytes_per_job", "completed_bytes_per_job"):
                lines.append(f"{q:<24}{cell(c, q, ',.0f'):>22}{cell(n, q, ',.0f'):>22}{'-':>22}")
        elif "drain_per_s" in (c or {}):
            lines.append(f"{name + ' enqueue/s':<24}{cell(c, 'enqueue_per_s', ',.0f'):>22}")
            lines.append(f"{name + ' drain/s':<24}{cell(c, 'drain_per_s', ',.0f'):>22}")
    lines.append("")
    lines.append("jobs/s cells: median ±spread, then worker/producer CPU µs per job")
    text = "\n".join(lines)
    print(text)
    out = HERE / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(
        json.dumps({"redis": version, "systems": systems, "results": results}, indent=2)
    )
    (out / "latest.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()
