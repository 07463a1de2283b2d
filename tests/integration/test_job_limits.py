"""Per-job-name concurrency with a real server: jobs waiting for their turn keep their leases
(heartbeats), so a wait longer than the lease is neither reaped nor counted as a stall."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

from corral import App
from corral.testing import running_worker


async def test_jobs_over_the_limit_wait_in_the_worker_with_their_leases_kept(
    make_app: Callable[..., App],
) -> None:
    app = make_app(lease=timedelta(seconds=1), reap_interval=timedelta(milliseconds=200))
    running = 0
    peak = 0

    @app.job(queue="mail", concurrency=1)
    async def send_email(to: str) -> str:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.6)
        running -= 1
        return to

    async with app:
        handles = [await send_email.enqueue(f"user{i}") for i in range(4)]
        # a second worker reaps expired leases: it would take a waiting job if its lease ran out
        async with (
            running_worker(app, ["mail"], concurrency=4),
            running_worker(app, ["mail"], concurrency=1, limits={"send_email": 1}),
        ):
            results = [await h.result(timeout=30) for h in handles]
        infos = [await h.info() for h in handles]
    assert results == [f"user{i}" for i in range(4)]
    assert peak <= 2  # one per worker process
    assert [(i.attempt, i.stalls) for i in infos] == [(1, 0)] * 4  # 2.4 s of waits, 1 s leases
