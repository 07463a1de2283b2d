"""watch.lua registers waiters; the terminal transitions push one token per waiter to done."""

from __future__ import annotations

import asyncio

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim_one, error, new_job


async def test_missing_job_is_none(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    assert await engine.watch(Q, "missing") is None
    assert raw.exists(keys.job("missing")) == 0


async def test_watch_registers_waiters_on_pending_jobs(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("w"), new_job("d", delay_ms=60_000))
    assert await engine.watch(Q, "w") == "waiting"
    assert await engine.watch(Q, "w") == "waiting"
    assert await engine.watch(Q, "d") == "delayed"
    assert raw.hget(keys.job("w"), "wt") == "2"
    assert raw.hget(keys.job("d"), "wt") == "1"
    await claim_one(engine)
    assert await engine.watch(Q, "w") == "active"
    assert raw.hget(keys.job("w"), "wt") == "3"


async def test_complete_pushes_one_token_per_waiter(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    for _ in range(3):
        await engine.watch(Q, "a")
    job = await claim_one(engine)
    await engine.complete(Q, [(job.id, job.token, "1")])
    assert raw.llen(keys.done("a")) == 3
    assert 0 < raw.pttl(keys.done("a")) <= 60_000
    assert raw.hexists(keys.job("a"), "wt") is False
    for _ in range(3):
        assert await engine.wait_done(Q, "a", 0.1) is True
    assert raw.exists(keys.done("a")) == 0


async def test_blocked_waiter_is_woken_by_complete(engine: Engine) -> None:
    await add(engine, new_job("a"))
    assert await engine.watch(Q, "a") == "waiting"
    waiter = asyncio.create_task(engine.wait_done(Q, "a", 0.3))
    await asyncio.sleep(0.02)
    job = await claim_one(engine)
    await engine.complete(Q, [(job.id, job.token, "1")])
    assert await waiter is True
    assert await engine.watch(Q, "a") == "completed"


async def test_ended_jobs_do_not_register(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("c"), new_job("x"))
    c = await claim_one(engine)
    await engine.complete(Q, [(c.id, c.token, "1")])
    x = await claim_one(engine)
    await engine.fail(Q, x.id, x.token, error(), retry_delay_ms=None, reason="fatal")
    assert await engine.watch(Q, "c") == "completed"
    assert await engine.watch(Q, "x") == "dead"
    assert raw.hexists(keys.job("c"), "wt") is False
    assert raw.hexists(keys.job("x"), "wt") is False


async def test_no_waiters_no_done_list(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.complete(Q, [(job.id, job.token, "1")])
    assert raw.exists(keys.done("a")) == 0
    assert await engine.wait_done(Q, "a", 0.05) is False


async def test_dead_notifies_but_retry_does_not(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    await engine.watch(Q, "a")
    job = await claim_one(engine)
    await engine.fail(Q, "a", job.token, error(), retry_delay_ms=0)
    assert raw.exists(keys.done("a")) == 0
    assert raw.hget(keys.job("a"), "wt") == "1"  # still waiting for the real end

    job = await claim_one(engine)
    await engine.fail(Q, "a", job.token, error(), retry_delay_ms=None, reason="exhausted")
    assert raw.llen(keys.done("a")) == 1
    assert raw.hexists(keys.job("a"), "wt") is False


async def test_reap_to_dead_notifies(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a", max_stalls=0))
    await engine.watch(Q, "a")
    await claim_one(engine, lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (0, 1)
    assert raw.llen(keys.done("a")) == 1


async def test_reschedule_past_the_limit_notifies(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_reschedules=0))
    await engine.watch(Q, "a")
    job = await claim_one(engine)
    assert await engine.reschedule(Q, "a", job.token, 0, "") == 2
    assert raw.llen(keys.done("a")) == 1
