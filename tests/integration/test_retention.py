"""Retention: finished jobs are trimmed by count and age; keep_completed=0 deletes at once."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

import pytest
import redis

from corral import App, Fatal, JobFailed, JobNotFound, JobState
from corral.testing import running_worker
from tests.integration._helpers import NO_RETRY, keys_of, wait_until


async def test_completed_trimmed_by_count(app: App) -> None:
    @app.job(queue="q")
    async def echo(n: int) -> int:
        return n

    queue = app.queue("q")
    await queue.set_retention(completed_max=3)
    async with running_worker(app, ["q"], concurrency=1):
        handles = []
        for n in range(8):  # one at a time: each result is read before it can be trimmed
            handles.append(await echo.enqueue(n))
            assert await handles[-1].result(timeout=10) == n
        await wait_until(_count_is(app, completed_trimmed=5), what="five jobs trimmed")
    counts = await queue.counts()
    assert counts.completed == 3
    for h in handles[:5]:
        with pytest.raises(JobNotFound):
            await h.info()
    assert [(await h.info()).result for h in handles[5:]] == [5, 6, 7]


async def test_completed_trimmed_by_age(app: App) -> None:
    @app.job(queue="q")
    async def echo(n: int) -> int:
        return n

    await app.queue("q").set_retention(completed_age=timedelta(milliseconds=300))
    async with running_worker(app, ["q"]):
        old = await echo.enqueue(1)
        assert await old.result(timeout=10) == 1
        assert (await old.info()).state == JobState.COMPLETED
        await asyncio.sleep(0.5)
        new = await echo.enqueue(2)  # finishing a job trims what has expired
        assert await new.result(timeout=10) == 2
    with pytest.raises(JobNotFound):
        await old.info()
    assert (await new.info()).result == 2
    assert (await app.queue("q").counts()).completed_trimmed == 1


async def test_keep_completed_zero_deletes_at_once(app: App, raw: redis.Redis, prefix: str) -> None:
    ran: list[int] = []

    @app.job(queue="q", keep_completed=timedelta(0))
    async def fire_and_forget(n: int) -> int:
        ran.append(n)
        return n

    @app.job(queue="q")
    async def kept(n: int) -> int:
        return n

    async with running_worker(app, ["q"]):
        gone = await fire_and_forget.enqueue(1)
        start = time.monotonic()
        with pytest.raises(JobNotFound):
            await gone.result(timeout=10)  # ended and was deleted: nothing to return
        assert time.monotonic() - start < 4
        assert await (await kept.enqueue(2)).result(timeout=10) == 2
        later = await fire_and_forget.enqueue(3)
        await wait_until(lambda: 3 in ran, what="the second job to run")
        await wait_until(_gone(app, later.id), what="the second job to be deleted")
    assert ran == [1, 3]
    counts = await app.queue("q").counts()
    assert (counts.completed, counts.waiting, counts.active) == (1, 0, 0)
    job_keys = [k for k in keys_of(raw, prefix) if gone.id in k or later.id in k]
    assert not [k for k in job_keys if ":j:" in k or ":log:" in k]


async def test_per_job_keep_completed_overrides_the_queue(app: App) -> None:
    @app.job(queue="q")
    async def echo(n: int) -> int:
        return n

    async with running_worker(app, ["q"]):
        short = await echo.with_options(keep_completed=timedelta(milliseconds=200)).enqueue(1)
        normal = await echo.enqueue(2)
        await short.result(timeout=10)
        await normal.result(timeout=10)
        await asyncio.sleep(0.4)
        await (await echo.enqueue(3)).result(timeout=10)
    with pytest.raises(JobNotFound):
        await short.info()
    assert (await normal.info()).state == JobState.COMPLETED


async def test_dead_trimmed_by_count_and_keep_dead_zero(app: App) -> None:
    @app.job(queue="q", retry=NO_RETRY)
    async def doomed(n: int) -> None:
        raise Fatal(f"no {n}")

    queue = app.queue("q")
    await queue.set_retention(dead_max=2)
    async with running_worker(app, ["q"], concurrency=1):
        handles = []
        for n in range(4):  # one at a time: each outcome is read before it can be trimmed
            handles.append(await doomed.enqueue(n))
            with pytest.raises(JobFailed):
                await handles[-1].result(timeout=10)
        vanishing = await doomed.with_options(keep_dead=timedelta(0)).enqueue(9)
        with pytest.raises((JobFailed, JobNotFound)):
            await vanishing.result(timeout=10)
        await wait_until(_gone(app, vanishing.id), what="the dead job to be deleted")
    counts = await queue.counts()
    assert counts.dead == 2
    assert counts.dead_trimmed == 3
    assert [(await h.info()).dead_reason for h in handles[2:]] == ["fatal", "fatal"]


async def test_set_retention_validates(app: App) -> None:
    from corral import ConfigError

    with pytest.raises(ConfigError):
        await app.queue("q").set_retention(completed_max=-1)
    with pytest.raises(ConfigError):
        await app.queue("q").set_retention(dead_age=timedelta(seconds=-1))


def _count_is(app: App, **expected: int):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        counts = await app.queue("q").counts()
        return all(getattr(counts, k) == v for k, v in expected.items())

    return check


def _gone(app: App, job_id: str):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        try:
            await app.get_job("q", job_id)
        except JobNotFound:
            return True
        return False

    return check
