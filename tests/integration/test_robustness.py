"""A handler cannot take its worker down, and a redrive cannot loop forever."""

from __future__ import annotations

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
