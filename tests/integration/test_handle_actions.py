"""Issue 13: ``JobHandle.cancel()`` and ``JobHandle.retry()`` act as ``Queue.cancel`` and
``Queue.retry`` do (same outcomes, same errors), against a real server."""

from __future__ import annotations

import asyncio

import pytest

from corral import App, JobFailed, JobNotFound, JobState, QueueNotFound, RetryPolicy
from corral.testing import running_worker


async def test_cancel_and_retry_through_the_handle(app: App) -> None:
    started = asyncio.Event()

    @app.job(queue="shop", retry=RetryPolicy(attempts=1))
    async def sync_order(order: str) -> str:
        if order == "slow":
            started.set()
            await asyncio.sleep(30)
        return order

    waiting = await sync_order.enqueue("acme:1")
    assert await waiting.cancel(reason="duplicate", by="ops@test") == "cancelled"
    info = await waiting.info()
    assert info.state == JobState.CANCELLED and info.cancellation is not None
    assert (info.cancellation.by, info.cancellation.reason) == ("ops@test", "duplicate")
    assert await waiting.cancel() == "ended"  # nothing left to cancel, as Queue.cancel says

    assert await waiting.retry(by="ops@test") is True
    assert await waiting.state() == JobState.WAITING
    assert await waiting.retry() is False  # not dead any more
    assert await app.queue("shop").retry(waiting.id) is False  # the queue agrees

    running = await sync_order.enqueue("slow")
    async with running_worker(app, ["shop"]):
        assert await waiting.result(timeout=10) == "acme:1"
        await asyncio.wait_for(started.wait(), 10)
        assert await running.cancel(reason="stop it") == "signalled"
        with pytest.raises(JobFailed) as failed:
            await running.result(timeout=10)
    assert failed.value.reason == "cancelled"
    assert await running.retry() is True  # a cancelled job is dead: it can run again
    assert await running.state() == JobState.WAITING


async def test_the_handle_raises_what_the_queue_raises(app: App) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    await sync_order.enqueue("acme:1")
    gone = app.handle("shop", "no-such-job")
    for action in (gone.cancel(), gone.retry()):
        with pytest.raises(JobNotFound, match="no job no-such-job in queue 'shop'"):
            await action
    for action in (app.queue("shop").cancel("no-such-job"), app.queue("shop").retry("no-such-job")):
        with pytest.raises(JobNotFound, match="no job no-such-job in queue 'shop'"):
            await action

    typo = app.handle("shpo", "whatever")
    for action in (typo.cancel(), typo.retry()):
        with pytest.raises(QueueNotFound, match="shpo"):
            await action
    assert not await app.queue("shpo").exists()  # nothing was created by the attempt
