"""How concurrency and per-job logging change a worker's drain rate (one process, uvloop).

    python -m bench.concurrency               # no-op and 10 ms I/O jobs at 1..200
    python -m bench.concurrency --jobs 20000

Figures for docs/workers.md ("Choosing concurrency"). Each run drains a fresh backlog of
``--jobs`` jobs from a private server; the rate is jobs completed per second of the drain.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import logging
import time
import uuid

from corral import App, Worker
from corral.cli._logging import PlainFormatter, setup
from corral.embedded import EmbeddedServer, ServerOptions, free_port
from corral.loop import run

LEVELS = (1, 10, 50, 100, 200)


async def drain(url: str, jobs: int, concurrency: int, sleep_s: float) -> float:
    app = App.from_url(url, prefix="c" + uuid.uuid4().hex[:8])

    @app.job(queue="bench")
    async def work(i: int) -> None:
        if sleep_s:
            await asyncio.sleep(sleep_s)

    async with app:
        for start in range(0, jobs, 1000):
            await app.enqueue_many([work.prepare(i) for i in range(start, min(jobs, start + 1000))])
        began = time.perf_counter()
        stats = await Worker(app, ["bench"], concurrency=concurrency, burst=True).run()
        took = time.perf_counter() - began
        await app.queue("bench").obliterate()
    return stats.completed / took


def with_job_lines(enabled: bool) -> None:
    """As ``corral worker`` logs (plain format, a line per job), into memory, or not at all."""
    setup("plain", "info" if enabled else "warning")
    handler = logging.StreamHandler(io.StringIO())
    handler.setFormatter(PlainFormatter())
    logging.getLogger().handlers[:] = [handler]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10_000)
    args = parser.parse_args()
    with EmbeddedServer(ServerOptions(port=free_port())) as server:
        for label, sleep_s in (("no-op", 0.0), ("10 ms of I/O", 0.01)):
            for c in LEVELS:
                if sleep_s and c == 1:
                    continue  # 100 jobs/s: nothing to learn
                rate = run(drain(server.url, args.jobs, c, sleep_s))
                print(f"{label:>13}, concurrency {c:>3}: {rate:>8,.0f} jobs/s", flush=True)
        for enabled in (False, True, False, True, False, True):
            with_job_lines(enabled)
            rate = run(drain(server.url, args.jobs, 100, 0.0))
            state = "on " if enabled else "off"
            print(
                f"no-op, concurrency 100, a line per job {state}: {rate:>8,.0f} jobs/s", flush=True
            )


if __name__ == "__main__":
    main()
