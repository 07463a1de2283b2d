"""Redis memory after many completed no-op jobs, with default retention.

    python -m bench.memory                 # 100,000 jobs
    python -m bench.memory --jobs 20000

Half the jobs have no group, half are spread over 1,000 groups. A producer enqueues in batches
of 1,000 (keeping at most a few thousand waiting) while one in-process worker runs them. Prints
Redis ``used_memory`` before, at its peak, and after, with the number of keys and the length of
the events stream. Default retention keeps the newest 1,000 completed jobs (for a day) and
about 10,000 events, so the figure after the run does not grow with the number of jobs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import redis

from corral import App, Settings, Worker
from corral.embedded import EmbeddedServer, ServerOptions, free_port

QUEUE = "mem"
BATCH = 1000


def used_memory(client: redis.Redis) -> int:
    return int(client.info("memory")["used_memory"])


async def measure(url: str, jobs: int, *, concurrency: int = 100) -> dict[str, Any]:
    """Run ``jobs`` no-op jobs to completion on the server at ``url`` (which should hold
    nothing else: memory is measured for the whole server)."""
    prefix = "mem" + uuid.uuid4().hex[:8]
    app = App(Settings.from_url(url, prefix=prefix))

    @app.job(queue=QUEUE)
    async def noop(i: int) -> None:
        return None

    @app.job(queue=QUEUE, group=lambda i: f"tenant-{i % 1000}")
    async def grouped(i: int) -> None:
        return None

    client = redis.Redis.from_url(url, decode_responses=True)
    async with app:
        queue = app.queue(QUEUE)
        await queue.create()  # connected, and the queue declared, before the first reading
        before = used_memory(client)
        peak = before
        worker = Worker(app, [QUEUE], concurrency=concurrency)
        running = asyncio.create_task(worker.run())
        t0 = time.perf_counter()
        for start in range(0, jobs, BATCH):
            fn = noop if (start // BATCH) % 2 == 0 else grouped
            end = min(jobs, start + BATCH)
            await app.enqueue_many([fn.prepare(i) for i in range(start, end)])
            while (await queue.counts()).waiting > 4 * BATCH:
                await asyncio.sleep(0.02)
            peak = max(peak, used_memory(client))
        while True:
            counts = await queue.counts()
            if counts.completed + counts.completed_trimmed >= jobs and counts.pending == 0:
                break
            await asyncio.sleep(0.05)
        wall = time.perf_counter() - t0
        worker.stop()
        await running
        after = used_memory(client)
        events = client.xlen(f"{prefix}:{{{QUEUE}}}:events")
        keys = client.dbsize()
    client.close()
    return {
        "jobs": jobs,
        "completed_kept": counts.completed,
        "completed_trimmed": counts.completed_trimmed,
        "used_memory_before": before,
        "used_memory_peak": peak,
        "used_memory_after": after,
        "growth": after - before,
        "keys": keys,
        "events": events,
        "jobs_per_s": round(jobs / wall),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=100_000)
    args = parser.parse_args()
    with EmbeddedServer(ServerOptions(port=free_port())) as server:
        result = asyncio.run(measure(server.url, args.jobs))
    print(json.dumps(result, indent=2))
    mib = 1024 * 1024
    print(
        f"{result['jobs']:,} jobs: used_memory {result['used_memory_before'] / mib:.2f} MiB "
        f"before, {result['used_memory_peak'] / mib:.2f} MiB peak, "
        f"{result['used_memory_after'] / mib:.2f} MiB after ({result['keys']} keys)"
    )


if __name__ == "__main__":
    main()
