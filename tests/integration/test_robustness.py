"""A handler cannot take its worker down, and a redrive cannot loop forever."""

from __future__ import annotations

import asyncio
import sys
import time

import pytest

from corral import App, Fatal, JobFailed, RetryPolicy
from corral.testing import running_worker


async def test_sys_exit_in_a_handler_fails_the_job_not_the_worker(app: App) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=1))
    def quitter(n: int) -> None:
        sys.exit(3)

    @app.job(queue="q")
    async def fine(n: int) -> int:
        return n

    async with running_worker(app, ["q"]) as worker:
        bad = await quitter.enqueue(1)
        with pytest.raises(JobFailed) as failed:
            await bad.result(timeout=10)
        assert failed.value.error_type == "SystemExit"
        assert await (await fine.enqueue(7)).result(timeout=10) == 7  # still serving
    assert worker.stats.dead == 1


async def test_replay_while_jobs_keep_dying_ends(app: App) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=1))
    async def doomed(n: int) -> None:
        raise Fatal("downstream still down")

    handles = [await doomed.enqueue(i) for i in range(20)]
    async with running_worker(app, ["q"]):
        for h in handles:
            with pytest.raises(JobFailed):
                await h.result(timeout=10)
        started = time.monotonic()
        report = await app.queue("q").dead_letters.replay(rate=40)
        assert (report.matched, report.replayed) == (20, 20)  # each once, not again and again
        assert time.monotonic() - started < 10


async def test_a_job_waiting_for_a_thread_does_not_time_out_before_it_runs(app: App) -> None:
    """Two handlers hang past their timeout and keep both threads of the pool; the next job
    gets its full timeout once a thread frees, instead of dying in the queue."""
    import threading
    from datetime import timedelta

    release = threading.Event()

    @app.job(queue="q", retry=RetryPolicy(attempts=1), timeout=timedelta(milliseconds=200))
    def hang(n: int) -> None:
        release.wait(5)

    @app.job(queue="q", retry=RetryPolicy(attempts=1), timeout=timedelta(milliseconds=500))
    def quick(n: int) -> int:
        return n

    async with running_worker(app, ["q"], concurrency=1):
        stuck = [await hang.enqueue(i) for i in range(2)]
        for h in stuck:
            with pytest.raises(JobFailed):
                await h.result(timeout=10)
        waiting = await quick.enqueue(5)
        await asyncio.sleep(0.8)  # longer than quick's timeout: it has been waiting for a thread
        release.set()
        assert await waiting.result(timeout=10) == 5
