"""Graceful shutdown: in-flight jobs finish within the grace period, or are handed back."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from corral import App, JobState, Worker
from tests.integration._helpers import wait_state, wait_until


async def test_stop_lets_running_jobs_finish_within_grace(app: App) -> None:
    started: list[int] = []
    finished: list[int] = []

    @app.job(queue="q")
    async def work(n: int) -> int:
        started.append(n)
        await asyncio.sleep(0.5)
        finished.append(n)
        return n

    @app.job(queue="q")
    def work_in_thread(n: int) -> int:
        started.append(n)
        time.sleep(0.5)
        finished.append(n)
        return n

    worker = Worker(app, ["q"], concurrency=4, grace=timedelta(seconds=10))
    handles = [await work.enqueue(n) for n in range(2)]
    handles += [await work_in_thread.enqueue(n) for n in range(2, 4)]
    extra = await work.with_options(delay=timedelta(milliseconds=800)).enqueue(99)
    run = asyncio.create_task(worker.run())
    await wait_until(lambda: len(started) == 4, what="four jobs to start")
    worker.stop()
    stats = await asyncio.wait_for(run, 10)

    assert sorted(finished) == [0, 1, 2, 3]
    for h in handles:
        assert (await h.info()).state == JobState.COMPLETED
    assert stats.completed == 4
    assert stats.released == 0
    # The worker stopped claiming: the delayed job was not picked up.
    await asyncio.sleep(1.0)
    assert (await extra.info()).attempt == 0
    assert 99 not in started


async def test_short_grace_hands_jobs_back_without_counting_the_attempt(app: App) -> None:
    runs: dict[int, int] = {}
    all_started = asyncio.Event()

    @app.job(queue="q")
    async def long_task(n: int) -> str:
        runs[n] = runs.get(n, 0) + 1
        if runs[n] == 1:
            if len(runs) == 3:
                all_started.set()
            await asyncio.sleep(30)  # the first worker never lets this finish
        return f"done {n}"

    first = Worker(app, ["q"], concurrency=3, grace=timedelta(milliseconds=200), name="first")
    handles = [await long_task.enqueue(n) for n in range(3)]
    run = asyncio.create_task(first.run())
    await asyncio.wait_for(all_started.wait(), 10)
    for h in handles:
        info = await h.info()
        assert (info.state, info.attempt, info.worker) == (JobState.ACTIVE, 1, "first")

    start = time.monotonic()
    first.stop()
    stats = await asyncio.wait_for(run, 10)
    assert time.monotonic() - start < 5
    assert stats.released == 3
    assert stats.completed == 0

    counts = await app.queue("q").counts()
    assert (counts.waiting, counts.active, counts.dead) == (3, 0, 0)
    for h in handles:
        info = await h.info()
        assert info.state == JobState.WAITING
        assert info.attempt == 0  # handed back: the interrupted attempt is not counted
        assert info.worker is None
        assert info.errors == []

    second = Worker(app, ["q"], concurrency=3, name="second")
    run2 = asyncio.create_task(second.run())
    results = [await h.result(timeout=10) for h in handles]
    second.stop()
    await asyncio.wait_for(run2, 10)
    assert results == ["done 0", "done 1", "done 2"]
    for h in handles:
        info = await h.info()
        assert info.attempt == 1
    assert runs == {0: 2, 1: 2, 2: 2}


async def test_force_stop_hands_back_at_once(app: App) -> None:
    started = asyncio.Event()

    @app.job(queue="q")
    async def forever() -> None:
        started.set()
        await asyncio.sleep(60)

    worker = Worker(app, ["q"], grace=timedelta(seconds=30))
    handle = await forever.enqueue()
    run = asyncio.create_task(worker.run())
    await asyncio.wait_for(started.wait(), 10)
    begin = time.monotonic()
    worker.stop(force=True)
    stats = await asyncio.wait_for(run, 10)
    assert time.monotonic() - begin < 5  # did not wait for the 30 s grace
    assert stats.released == 1
    info = await wait_state(app, "q", handle.id, JobState.WAITING)
    assert info.attempt == 0


async def test_a_finished_job_during_grace_is_acknowledged(app: App) -> None:
    """Jobs that end while others are being waited for are acknowledged before exit."""
    gate = asyncio.Event()

    @app.job(queue="q")
    async def quick() -> str:
        await gate.wait()
        return "quick"

    @app.job(queue="q")
    async def slow() -> str:
        await asyncio.sleep(30)
        return "slow"

    worker = Worker(app, ["q"], concurrency=2, grace=timedelta(milliseconds=600))
    q = await quick.enqueue()
    s = await slow.enqueue()
    run = asyncio.create_task(worker.run())
    await wait_state(app, "q", q.id, JobState.ACTIVE)
    await wait_state(app, "q", s.id, JobState.ACTIVE)
    worker.stop()
    gate.set()
    stats = await asyncio.wait_for(run, 10)
    assert (stats.completed, stats.released) == (1, 1)
    assert await q.result(timeout=1) == "quick"
    assert (await s.info()).state == JobState.WAITING
