"""bullmq (Python) side of the benchmark: one scenario per run, one JSON line on stdout.

Run with the bench-only virtualenv (bench/.venv-peers), never Corral's:
    python bullmq_py_bench.py --url redis://127.0.0.1:PORT --scenario NAME --jobs N
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from bullmq import Queue, Worker


def cpu() -> float:
    return time.process_time()


def emit(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


async def counts_left(queue: Queue) -> int:
    counts = await queue.getJobCounts("waiting", "active", "prioritized")
    return sum(int(v) for v in counts.values())


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--producers", type=int, default=100)
    p.add_argument("--payload", type=int, default=0)
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--queue", default="bench")
    a = p.parse_args()
    opts = {"connection": a.url}
    pad = "x" * a.payload
    queue = Queue(a.queue, opts)

    if a.scenario == "enqueue-single":
        c0, t0 = cpu(), time.perf_counter()
        for i in range(a.jobs):
            await queue.add("noop", {"i": i, "pad": pad})
        wall, c = time.perf_counter() - t0, cpu() - c0
        emit(jobs_per_s=a.jobs / wall, cpu_us_per_job=c / a.jobs * 1e6)
    elif a.scenario == "enqueue-concurrent":
        per = -(-a.jobs // a.producers)

        async def produce(k: int) -> None:
            for i in range(per):
                await queue.add("noop", {"i": k * per + i, "pad": pad})

        c0, t0 = cpu(), time.perf_counter()
        await asyncio.gather(*(produce(k) for k in range(a.producers)))
        wall, c = time.perf_counter() - t0, cpu() - c0
        total = per * a.producers
        emit(jobs_per_s=total / wall, cpu_us_per_job=c / total * 1e6)
    elif a.scenario in ("enqueue-bulk", "fill"):
        c0, t0 = cpu(), time.perf_counter()
        for s in range(0, a.jobs, 1000):
            batch = [
                {"name": "noop", "data": {"i": i, "pad": pad}}
                for i in range(s, min(a.jobs, s + 1000))
            ]
            await queue.addBulk(batch)
        wall, c = time.perf_counter() - t0, cpu() - c0
        emit(jobs_per_s=a.jobs / wall, cpu_us_per_job=c / a.jobs * 1e6)
    elif a.scenario == "drain":
        done = 0

        async def process(job: Any, token: str) -> None:
            nonlocal done
            done += 1

        if a.start:
            await asyncio.sleep(max(0.0, a.start - time.time()))
        started = time.time()
        c0, t0 = cpu(), time.perf_counter()
        worker = Worker(a.queue, process, {**opts, "concurrency": a.concurrency})
        while await counts_left(queue) > 0:
            await asyncio.sleep(0.02)
        wall, c = time.perf_counter() - t0, cpu() - c0
        await worker.close()
        emit(
            jobs_per_s=done / wall,
            cpu_us_per_job=c / max(done, 1) * 1e6,
            done=done,
            started=started,
            ended=time.time(),
        )
    elif a.scenario == "latency":
        returned: dict[int, float] = {}
        started_at: dict[int, float] = {}

        async def record(job: Any, token: str) -> None:
            started_at[job.data["i"]] = time.perf_counter()

        worker = Worker(a.queue, record, {**opts, "concurrency": 10})
        await asyncio.sleep(0.3)
        for i in range(a.jobs):
            await queue.add("noop", {"i": i, "pad": pad})
            returned[i] = time.perf_counter()
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.3)
        await worker.close()
        lat = [max(0.0, (started_at[i] - t) * 1000) for i, t in returned.items() if i in started_at]
        emit(p50_ms=quantile(lat, 0.5), p99_ms=quantile(lat, 0.99), samples=len(lat))
    else:
        raise SystemExit(f"unknown scenario {a.scenario}")
    await queue.close()


if __name__ == "__main__":
    asyncio.run(main())
