"""Queues: pause/resume, weighted and strict tiers, counts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from corral import App, ConfigError, Fatal, JobState, Worker
from corral.testing import running_worker
from tests.integration._helpers import NO_RETRY, wait_state, wait_until


async def test_pause_stops_claiming_and_resume_continues(app: App) -> None:
    ran: list[int] = []
    gate = asyncio.Event()

    @app.job(queue="q")
    async def task(n: int) -> None:
        if n == 0:
            await gate.wait()
        ran.append(n)

    queue = app.queue("q")
    async with running_worker(app, ["q"], concurrency=4):
        first = await task.enqueue(0)
        await wait_state(app, "q", first.id, JobState.ACTIVE)
        await queue.pause()
        assert (await queue.counts()).paused is True
        later = [await task.enqueue(n) for n in range(1, 4)]
        await asyncio.sleep(0.8)
        assert ran == []
        counts = await queue.counts()
        assert (counts.waiting, counts.active) == (3, 1)
        # A job already running when the queue was paused finishes normally.
        gate.set()
        await first.result(timeout=10)
        await asyncio.sleep(0.3)
        assert ran == [0]
        assert all([(await h.state()) == JobState.WAITING for h in later])

        await queue.resume()
        assert (await queue.counts()).paused is False
        for h in later:
            await h.result(timeout=10)
    assert sorted(ran) == [0, 1, 2, 3]


async def test_paused_queue_does_not_block_other_queues(app: App) -> None:
    @app.job(queue="paused")
    async def blocked() -> str:
        return "blocked"

    @app.job(queue="open")
    async def flowing() -> str:
        return "flowing"

    await app.queue("paused").create()
    await app.queue("paused").pause()
    async with running_worker(app, ["paused", "open"]):
        b = await blocked.enqueue()
        f = await flowing.enqueue()
        assert await f.result(timeout=10) == "flowing"
        await asyncio.sleep(0.3)
        assert (await b.state()) == JobState.WAITING
        await app.queue("paused").resume()
        assert await b.result(timeout=10) == "blocked"


async def _flood(app: App, high_n: int, low_n: int) -> tuple[list[str], object, object]:
    order: list[str] = []

    @app.job(queue="high")
    async def high_job(n: int) -> None:
        order.append("high")
        await asyncio.sleep(0.002)

    @app.job(queue="low")
    async def low_job(n: int) -> None:
        order.append("low")
        await asyncio.sleep(0.002)

    await app.enqueue_many([high_job.prepare(i) for i in range(high_n)])
    await app.enqueue_many([low_job.prepare(i) for i in range(low_n)])
    return order, high_job, low_job


async def test_weighted_queues_let_the_low_tier_progress(app: App) -> None:
    order, _, _ = await _flood(app, high_n=60, low_n=6)
    async with running_worker(app, ["high", "low"], concurrency=1, weights={"high": 3, "low": 1}):
        await wait_until(lambda: len(order) == 66, timeout=30, what="all 66 jobs")
    lows = [i for i, q in enumerate(order) if q == "low"]
    assert len(lows) == 6
    # The low tier started early and finished while the high tier still had a backlog...
    assert lows[0] < 8, order
    assert lows[-1] < 40, order
    assert order[-1] == "high"
    # ...at about the 3:1 share its weight gives it (one job in four), not one in two.
    mean_gap = (lows[-1] - lows[0]) / (len(lows) - 1)
    assert 3.0 <= mean_gap <= 5.0, lows


async def test_strict_order_drains_the_first_queue_first(app: App) -> None:
    order, _, _ = await _flood(app, high_n=20, low_n=5)
    async with running_worker(app, ["high", "low"], concurrency=1):
        await wait_until(lambda: len(order) == 25, timeout=30, what="all 25 jobs")
    assert order == ["high"] * 20 + ["low"] * 5


async def test_worker_defaults_to_the_apps_queues(app: App) -> None:
    @app.job(queue="alpha")
    async def a() -> str:
        return "a"

    @app.job(queue="beta")
    def b() -> str:
        return "b"

    worker = Worker(app)
    assert worker.queues == ["alpha", "beta"]
    async with running_worker(app):
        assert await (await a.enqueue()).result(timeout=10) == "a"
        assert await (await b.enqueue()).result(timeout=10) == "b"

    with pytest.raises(ConfigError, match="weights"):
        Worker(app, ["alpha"], weights={"alpha": 0})
    with pytest.raises(ConfigError, match="concurrency"):
        Worker(app, ["alpha"], concurrency=0)
    with pytest.raises(ConfigError, match="queue name"):
        Worker(app, ["bad name!"])


async def test_counts(app: App) -> None:
    gate = asyncio.Event()

    @app.job(queue="q", retry=NO_RETRY)
    async def job(kind: str) -> str:
        if kind == "block":
            await gate.wait()
        if kind == "fail":
            raise Fatal("no")
        return kind

    queue = app.queue("q")
    await queue.create()
    empty = await queue.counts()
    assert (empty.waiting, empty.delayed, empty.active, empty.completed, empty.dead) == (0,) * 5
    assert empty.pending == 0 and empty.paused is False and empty.queue == "q"

    async with running_worker(app, ["q"], concurrency=1):
        ok = await job.enqueue("ok")
        await ok.result(timeout=10)
        bad = await job.enqueue("fail")
        with pytest.raises(Exception, match="fatal"):
            await bad.result(timeout=10)
        blocker = await job.enqueue("block")
        await wait_state(app, "q", blocker.id, JobState.ACTIVE)
        for _ in range(3):
            await job.enqueue("ok")
        await job.with_options(delay=timedelta(hours=1)).enqueue("later")
        counts = await queue.counts()
        assert (counts.waiting, counts.delayed, counts.active) == (3, 1, 1)
        assert (counts.completed, counts.dead) == (1, 1)
        assert counts.pending == 5
        gate.set()
        await wait_until(_drained(app), what="waiting jobs to finish")
    final = await queue.counts()
    states = (final.waiting, final.delayed, final.active, final.completed, final.dead)
    assert states == (0, 1, 0, 5, 1)
    assert (final.completed_trimmed, final.dead_trimmed) == (0, 0)


def _drained(app: App):  # type: ignore[no-untyped-def]
    async def check() -> bool:
        c = await app.queue("q").counts()
        return c.waiting == 0 and c.active == 0 and c.completed == 5

    return check


async def test_a_full_worker_waits_quietly_past_a_due_delayed_job(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With every slot busy, a delayed job falling due must not turn the worker's wait into a
    spin: it is claimed once a slot frees."""
    gate = asyncio.Event()
    ran: list[str] = []

    @app.job(queue="busy")
    async def hold(tag: str) -> None:
        ran.append(tag)
        if tag == "long":
            await gate.wait()

    idles = 0
    original = Worker._wait_for_work

    async def counting(self: Worker, engine: Any) -> None:
        nonlocal idles
        idles += 1
        await original(self, engine)

    monkeypatch.setattr(Worker, "_wait_for_work", counting)
    await hold.enqueue("long")
    await hold.with_options(delay=timedelta(milliseconds=200)).enqueue("later")
    async with running_worker(app, ["busy"], concurrency=1):
        await wait_until(lambda: ran == ["long"], what="the long job to start")
        await asyncio.sleep(1.0)  # "later" is due after 0.2 s; the only slot is taken
        assert ran == ["long"]
        assert idles < 50, f"the worker woke {idles} times in a second while full"
        gate.set()
        await wait_until(lambda: ran == ["long", "later"], what="the delayed job to run")
