"""Enqueue and drain no-op jobs with one worker process; prints jobs/s and CPU µs per job.

Scenarios (each on a fresh key prefix, medians of --runs runs):
  enqueue-single  awaited one at a time
  enqueue-bulk    enqueue_many, 1,000 per call
  drain           one Worker (one process) drains the backlog of --jobs jobs
  drain-groups    the same backlog spread over --jobs groups of one job each (fair queueing)

Starts its own embedded server unless CORRAL_REDIS_URL is set. Writes bench/results/drain.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

from corral import App, Settings, Worker
from corral.embedded import EmbeddedServer, ServerOptions, free_port


def build_app(url: str) -> App:
    app = App(Settings.from_url(url, prefix="bench" + uuid.uuid4().hex[:8]))

    @app.job(queue="bench")
    async def noop(i: int) -> None:
        return None

    @app.job(queue="bench", group=lambda i: f"tenant-{i}")
    async def grouped(i: int) -> None:
        return None

    return app


async def enqueue_single(url: str, jobs: int) -> dict[str, float]:
    app = build_app(url)
    noop = app.registry["noop"]
    async with app:
        await app.connect()
        cpu, t0 = time.process_time(), time.perf_counter()
        for i in range(jobs):
            await noop.enqueue(i)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return {"jobs_per_s": jobs / wall, "cpu_us_per_job": cpu / jobs * 1e6}


async def enqueue_bulk(url: str, jobs: int) -> dict[str, float]:
    app = build_app(url)
    noop = app.registry["noop"]
    async with app:
        await app.connect()
        cpu, t0 = time.process_time(), time.perf_counter()
        for start in range(0, jobs, 1000):
            await app.enqueue_many([noop.prepare(i) for i in range(start, min(jobs, start + 1000))])
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
    return {"jobs_per_s": jobs / wall, "cpu_us_per_job": cpu / jobs * 1e6}


async def drain(url: str, jobs: int, concurrency: int, job: str = "noop") -> dict[str, float]:
    app = build_app(url)
    noop = app.registry[job]
    async with app:
        for start in range(0, jobs, 1000):
            await app.enqueue_many([noop.prepare(i) for i in range(start, min(jobs, start + 1000))])
        worker = Worker(app, ["bench"], concurrency=concurrency, burst=True)
        cpu, t0 = time.process_time(), time.perf_counter()
        stats = await worker.run()
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu
        assert stats.completed == jobs, f"drained {stats.completed} of {jobs}"
    return {"jobs_per_s": jobs / wall, "cpu_us_per_job": cpu / jobs * 1e6}


def summarise(samples: list[dict[str, float]]) -> dict[str, Any]:
    rates = [s["jobs_per_s"] for s in samples]
    cpus = [s["cpu_us_per_job"] for s in samples]
    med = statistics.median(rates)
    spread = (max(rates) - min(rates)) / med * 100 if med else 0.0
    return {
        "jobs_per_s": round(med),
        "cpu_us_per_job": round(statistics.median(cpus), 1),
        "runs": len(rates),
        "spread_pct": round(spread, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--single-jobs", type=int, default=3_000)
    parser.add_argument("--concurrency", type=int, default=100)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()

    server = None
    url = os.environ.get("CORRAL_REDIS_URL")
    if not url:
        server = EmbeddedServer(ServerOptions(port=free_port())).start()
        url = server.url
    try:
        results: dict[str, Any] = {}
        scenarios = {
            "enqueue-single": lambda: enqueue_single(url, args.single_jobs),
            "enqueue-bulk": lambda: enqueue_bulk(url, args.jobs),
            f"drain ({args.jobs:,} jobs, 1 process, concurrency {args.concurrency})": lambda: drain(
                url, args.jobs, args.concurrency
            ),
            f"drain ({args.jobs:,} groups of 1 job)": lambda: drain(
                url, args.jobs, args.concurrency, "grouped"
            ),
        }
        for name, scenario in scenarios.items():
            results[name] = summarise([asyncio.run(scenario()) for _ in range(args.runs)])
    finally:
        if server is not None:
            server.stop()

    width = max(len(n) for n in results)
    print(f"{'scenario':<{width}}  {'jobs/s':>9}  {'CPU µs/job':>10}  {'spread':>7}")
    for name, r in results.items():
        print(
            f"{name:<{width}}  {r['jobs_per_s']:>9,}  {r['cpu_us_per_job']:>10}  "
            f"{r['spread_pct']:>6}%"
        )
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "drain.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
