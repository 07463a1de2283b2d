"""Rolling deploys and server settings a worker must not be silent about (issue 11, items 9-10).

New producers often ship before new workers: a job whose name an old worker does not know is
handed back for a worker that knows it, not killed; and a server that may evict keys is named
at worker start."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest

from corral import App, JobState
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._helpers import wait_state, wait_until


def old_and_new(make_app: Callable[..., App]) -> tuple[App, App]:
    """The same queue as two releases define it: the new one has a job the old one lacks."""
    old, new = make_app(), make_app()

    @old.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    @new.job(queue="shop", name="sync_order")
    async def sync_order_v2(order: str) -> str:
        return order

    @new.job(queue="shop")
    async def send_invoice(order: str) -> str:
        return f"invoice for {order}"

    return old, new


async def test_an_old_worker_hands_a_new_job_back_until_a_new_worker_runs_it(
    make_app: Callable[..., App],
) -> None:
    old, new = old_and_new(make_app)
    async with old, new:
        handle = await new.registry["send_invoice"].enqueue("o-1")
        async with running_worker(old, ["shop"], unknown_job_grace=timedelta(minutes=5)) as w:
            await wait_until(lambda: w.stats.deferred >= 1, what="the old worker to defer it")
            info = await handle.info()  # (the old worker may hold it again, a second later)
            assert info.state in (JobState.DELAYED, JobState.WAITING, JobState.ACTIVE)
            assert (info.errors, info.dead_reason) == ([], None)
            assert w.stats.dead == 0
            async with running_worker(new, ["shop"]):
                # Both workers race for it each time it is due; each hand-back by the old one
                # waits longer (half the time it has been unknown): ~11 races in 60 s.
                assert await handle.result(timeout=60) == "invoice for o-1"
        assert (await handle.info()).attempt == 1  # the hand-backs did not count


async def test_a_job_nobody_knows_is_dead_after_the_grace(make_app: Callable[..., App]) -> None:
    old, new = old_and_new(make_app)
    async with old, new:
        handle = await new.registry["send_invoice"].enqueue("o-2")
        async with running_worker(old, ["shop"], unknown_job_grace=timedelta(seconds=1)):
            info = await wait_state(old, "shop", handle.id, "dead", timeout=20)
    assert info.dead_reason == "unknown_job"
    assert info.last_error is not None
    assert info.last_error.type == "UnknownJob"
    assert "send_invoice" in info.last_error.message


async def test_worker_warns_when_redis_may_evict_jobs(
    fresh_server: Callable[..., EmbeddedServer], caplog: pytest.LogCaptureFixture
) -> None:
    lru = fresh_server(extra=("--maxmemory-policy", "allkeys-lru"))
    safe = fresh_server()
    for srv, warned in ((lru, True), (safe, False)):
        app = App.from_url(srv.url)

        @app.job(queue="q")
        async def noop() -> None:
            return None

        caplog.clear()
        with caplog.at_level(logging.INFO, logger="corral"):
            async with app, running_worker(app, ["q"]):
                await wait_until(lambda: any("serving" in r.message for r in caplog.records))
        found = [r.message for r in caplog.records if "maxmemory-policy" in r.message]
        assert bool(found) == warned, found
        if warned:
            assert "allkeys-lru" in found[0] and "noeviction" in found[0]
