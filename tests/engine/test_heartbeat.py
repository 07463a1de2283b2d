"""heartbeat.lua: extend the leases a worker still holds; report the ones it lost."""

from __future__ import annotations

import asyncio

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, claim_one, new_job, server_ms


async def test_heartbeat_extends_the_lease(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    a, b = await claim(engine, 2, lease_ms=1_000)
    before = server_ms(raw)
    assert (await engine.heartbeat(Q, 60_000, [(a.id, a.token), (b.id, b.token)]))[0] == []
    for job_id in ("a", "b"):
        deadline = raw.zscore(keys.active, job_id)
        assert deadline is not None
        assert before + 60_000 <= deadline <= server_ms(raw) + 60_000


async def test_heartbeat_can_shorten_the_lease(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    a = await claim_one(engine, lease_ms=60_000)
    await engine.heartbeat(Q, 100, [(a.id, a.token)])
    deadline = raw.zscore(keys.active, "a")
    assert deadline is not None
    assert deadline <= server_ms(raw) + 100


async def test_heartbeat_keeps_the_reaper_away(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    a = await claim_one(engine, lease_ms=50)
    assert (await engine.heartbeat(Q, 5_000, [(a.id, a.token)]))[0] == []
    await asyncio.sleep(0.1)  # well past the first lease
    assert (await engine.reap(Q)).counts == (0, 0)
    assert raw.hget(keys.job("a"), "tk") == a.token
    assert raw.hget(keys.job("a"), "st") == "active"


async def test_reports_lost_ids_in_order(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("held"), new_job("done"), new_job("stolen"))
    held, done, stolen = await claim(engine, 3)
    await engine.complete(Q, [(done.id, done.token, "1")])
    items = [
        (stolen.id, "someone-elses-token"),
        (held.id, held.token),
        (done.id, done.token),
        ("missing", "1"),
    ]
    assert (await engine.heartbeat(Q, 30_000, items))[0] == ["stolen", "done", "missing"]
    # a lost lease is never re-created by a heartbeat
    assert raw.zscore(keys.active, "done") is None
    assert raw.zscore(keys.active, "missing") is None
    assert raw.hget(keys.job("done"), "st") == "completed"


async def test_reaped_job_is_lost_and_not_re_added(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_stalls=3))
    a = await claim_one(engine, lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)
    assert (await engine.heartbeat(Q, 30_000, [(a.id, a.token)]))[0] == ["a"]
    assert raw.zcard(keys.active) == 0
    assert raw.hget(keys.job("a"), "st") == "waiting"


async def test_empty_heartbeat(engine: Engine) -> None:
    assert (await engine.heartbeat(Q, 30_000, []))[0] == []


async def test_heartbeat_reports_cancellation_requests(engine: Engine) -> None:

    await add(engine, new_job("a"), new_job("b"))
    a, b = await claim(engine, 2)
    assert await engine.cancel(Q, "a", "ops", "customer asked") == 2
    lost, cancel = await engine.heartbeat(Q, 30_000, [(a.id, a.token), (b.id, b.token)])
    assert (lost, cancel) == ([], ["a"])
