"""Corral side of the benchmark: one scenario per run, one JSON line on stdout.

    python -m bench.corral_bench --url redis://127.0.0.1:PORT --scenario NAME --jobs N

Scenarios mirror bench/peers/*: enqueue-single, enqueue-concurrent, enqueue-bulk, fill, drain,
latency, memory; plus Corral-only ones: delayed (start delay past due time), groups (drain of
N groups of one job), backlog (enqueue and drain rates on top of --backlog waiting jobs).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import timedelta
from typing import Any

import corral.loop
from corral import App, Settings, Worker


def emit(**values: Any) -> None:
    print(json.dumps(values), flush=True)


def quantile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(q * len(s)))]


def spin(us: float) -> None:
    """Busy the CPU for ``us`` microseconds: a handler with Python work to do."""
    until = time.perf_counter() + us / 1e6
    while time.perf_counter() < until:
        pass


class Bench:
    def __init__(self, url: str, queue: str, pad: str, work_us: float = 0.0) -> None:
        self.app = App(Settings.from_url(url, prefix="bench"))
        self.queue = queue
        self.pad = pad
        self.started: dict[int, float] = {}
        started = self.started

        @self.app.job(queue=queue, name="noop")
        async def noop(i: int, pad: str = "") -> None:
            if work_us:
                spin(work_us)

        @self.app.job(queue=queue, name="timed")
        async def timed(i: int, pad: str = "") -> None:
            started[i] = time.perf_counter()

        @self.app.job(queue=queue, name="grouped", group=lambda i: f"tenant-{i}")
        async def grouped(i: int, pad: str = "") -> None:
            return None

        self.noop, self.timed, self.grouped = noop, timed, grouped

    async def fill(self, n: int, job: Any = None) -> None:
        fn = job or self.noop
        for s in range(0, n, 1000):
            await self.app.enqueue_many(
                [fn.prepare(i, self.pad) for i in range(s, min(n, s + 1000))]
            )

    async def used_memory(self) -> int:
        engine = await self.app.engine()
        return int((await engine.client.info("memory"))["used_memory"])

    def worker(self, concurrency: int, **kw: Any) -> Worker:
        return Worker(self.app, [self.queue], concurrency=concurrency, burst=True, **kw)


async def run(a: argparse.Namespace) -> None:
    b = Bench(a.url, a.queue, "x" * a.payload, a.work_us)
    async with b.app:
        await b.app.connect()
        if a.scenario == "enqueue-single":
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(a.jobs):
                await b.noop.enqueue(i, b.pad)
            wall, c = time.perf_counter() - t0, time.process_time() - c0
            emit(jobs_per_s=a.jobs / wall, cpu_us_per_job=c / a.jobs * 1e6)
        elif a.scenario == "enqueue-concurrent":
            per = -(-a.jobs // a.producers)

            async def produce(k: int) -> None:
                for i in range(per):
                    await b.noop.enqueue(k * per + i, b.pad)

            c0, t0 = time.process_time(), time.perf_counter()
            await asyncio.gather(*(produce(k) for k in range(a.producers)))
            wall, c = time.perf_counter() - t0, time.process_time() - c0
            emit(jobs_per_s=per * a.producers / wall, cpu_us_per_job=c / (per * a.producers) * 1e6)
        elif a.scenario in ("enqueue-bulk", "fill"):
            c0, t0 = time.process_time(), time.perf_counter()
            await b.fill(a.jobs, b.grouped if a.grouped else None)
            wall, c = time.perf_counter() - t0, time.process_time() - c0
            emit(jobs_per_s=a.jobs / wall, cpu_us_per_job=c / a.jobs * 1e6)
        elif a.scenario == "drain":
            worker = b.worker(a.concurrency)
            if a.start:
                await asyncio.sleep(max(0.0, a.start - time.time()))
            started = time.time()
            c0, t0 = time.process_time(), time.perf_counter()
            stats = await worker.run()
            wall, c = time.perf_counter() - t0, time.process_time() - c0
            done = stats.completed
            emit(
                jobs_per_s=done / wall,
                cpu_us_per_job=c / max(done, 1) * 1e6,
                done=done,
                started=started,
                ended=time.time(),
            )
        elif a.scenario in ("latency", "delayed"):
            worker = Worker(b.app, [a.queue], concurrency=10)
            task = asyncio.create_task(worker.run())
            await asyncio.sleep(0.3)
            due: dict[int, float] = {}
            delay = timedelta(milliseconds=100)
            for i in range(a.jobs):
                if a.scenario == "latency":
                    await b.timed.enqueue(i, b.pad)
                    due[i] = time.perf_counter()
                else:
                    await b.timed.with_options(delay=delay).enqueue(i, b.pad)
                    due[i] = time.perf_counter() + 0.1
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.4)
            worker.stop()
            await task
            lat = [max(0.0, (b.started[i] - t) * 1000) for i, t in due.items() if i in b.started]
            emit(p50_ms=quantile(lat, 0.5), p99_ms=quantile(lat, 0.99), samples=len(lat))
        elif a.scenario == "memory":
            before = await b.used_memory()
            await b.fill(a.jobs)
            waiting = await b.used_memory()
            await b.worker(100).run()
            await asyncio.sleep(0.2)
            completed = await b.used_memory()
            emit(
                waiting_bytes_per_job=(waiting - before) / a.jobs,
                completed_bytes_per_job=(completed - before) / a.jobs,
            )
        elif a.scenario == "backlog":
            # rates on top of a backlog: bulk-enqueue --jobs more, then drain --jobs of them
            # (the worker stops after --jobs, the backlog stays)
            await b.fill(a.backlog)
            c0, t0 = time.process_time(), time.perf_counter()
            for i in range(a.jobs):
                await b.noop.enqueue(i, b.pad)
            enq_wall = time.perf_counter() - t0
            worker = Worker(b.app, [a.queue], concurrency=a.concurrency)
            task = asyncio.create_task(worker.run())
            t1 = time.perf_counter()
            while worker.stats.completed < a.jobs:
                await asyncio.sleep(0.005)
            drain_wall = time.perf_counter() - t1
            worker.stop(force=True)
            await task
            c = time.process_time() - c0
            emit(
                enqueue_per_s=a.jobs / enq_wall,
                drain_per_s=a.jobs / drain_wall,
                cpu_us_per_job=c / a.jobs * 1e6,
            )
        else:
            raise SystemExit(f"unknown scenario {a.scenario}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", required=True)
    p.add_argument("--scenario", required=True)
    p.add_argument("--jobs", type=int, default=10_000)
    p.add_argument("--concurrency", type=int, default=100)
    p.add_argument("--producers", type=int, default=100)
    p.add_argument("--payload", type=int, default=0)
    p.add_argument("--start", type=float, default=0.0)
    p.add_argument("--backlog", type=int, default=0)
    p.add_argument("--grouped", action="store_true")
    p.add_argument("--work-us", type=float, default=0.0, help="CPU µs each handler spends")
    p.add_argument("--queue", default="bench-" + uuid.uuid4().hex[:6])
    p.add_argument("--loop", default="auto", choices=["auto", "uvloop", "asyncio"])
    a = p.parse_args()
    corral.loop.run(run(a), choice=a.loop)


if __name__ == "__main__":
    main()
