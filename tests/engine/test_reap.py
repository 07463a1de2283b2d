"""reap.lua: jobs whose lease expired go back to waiting, or dead after too many stalls."""

from __future__ import annotations

import asyncio
import json

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.engine.outcomes import Failed

from .helpers import Q, add, claim, claim_one, error, events, new_job


async def test_expired_lease_is_requeued(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a", group="g", max_stalls=2))
    await claim_one(engine, worker="dies", lease_ms=50)
    raw.delete(keys.marker)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "waiting"
    assert h["sl"] == "1"
    assert h["a"] == "0"  # a stall does not use up an attempt
    assert "tk" not in h
    assert "wk" not in h
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    assert raw.zscore(keys.marker, "m") is not None
    assert ("stalled", "a") in events(raw, engine)
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.dead) == (1, 0, 0)

    again = await claim_one(engine)
    assert (again.id, again.attempt) == ("a", 1)


async def test_live_leases_are_left_alone(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("short"), new_job("long"))
    await claim_one(engine, lease_ms=50)
    long = await claim_one(engine, lease_ms=30_000)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)
    assert raw.zrange(keys.active, 0, -1) == ["long"]
    assert raw.hget(keys.job("long"), "tk") == long.token
    assert (await engine.reap(Q)).counts == (0, 0)


async def test_old_token_is_stale_after_reap(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_stalls=3))
    old = await claim_one(engine, lease_ms=50)
    await asyncio.sleep(0.1)
    await engine.reap(Q)

    # the frozen worker wakes up: every fenced call is refused, before and after a re-lease
    assert await engine.complete(Q, [("a", old.token, "1")]) == [False]
    assert await engine.fail(Q, "a", old.token, error(), retry_delay_ms=0) is Failed.REFUSED
    assert await engine.touch(Q, "a", old.token, progress_json="50") is False
    new = await claim_one(engine)
    assert await engine.complete(Q, [("a", old.token, "1")]) == [False]
    assert await engine.reschedule(Q, "a", old.token, 0, "") == 0
    assert await engine.release(Q, [("a", old.token)]) == 0
    assert (await engine.heartbeat(Q, 30_000, [("a", old.token)]))[0] == ["a"]
    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["tk"]) == ("active", new.token)
    assert "pg" not in h


async def test_goes_dead_as_stalled_past_max_stalls(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_stalls=1))
    await claim_one(engine, worker="w-first", lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)
    await claim_one(engine, worker="w-second", lease_ms=50)
    await asyncio.sleep(0.1)
    reaped = await engine.reap(Q, reaper="w-reaper")
    assert reaped.counts == (0, 1)
    (death,) = reaped.deaths  # what a worker's on_dead hooks get
    assert (death.job_id, death.outcome, death.dead_reason, death.worker) == (
        "a", "dead", "stalled", "w-second",
    )  # fmt: skip
    assert (death.queue, death.attempt, death.error and death.error.type) == (Q, 1, "Stalled")

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "dead"
    assert h["dr"] == "stalled"
    assert h["sl"] == "2"
    err = json.loads(h["le"])
    assert err["type"] == "Stalled"
    assert err["worker"] == "w-second"
    assert err["attempt"] == 1
    assert raw.zscore(keys.dead, "a") is not None
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.dead) == (0, 0, 1)
    assert events(raw, engine)[-1] == ("dead", "a")


async def test_zero_max_stalls_goes_dead_at_the_first_stall(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_stalls=0))
    await claim_one(engine, lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (0, 1)
    assert raw.hget(keys.job("a"), "dr") == "stalled"


async def test_limit_bounds_the_work_per_call(engine: Engine, raw: redis.Redis) -> None:
    await add(engine, *(new_job(f"j{i}", max_stalls=5) for i in range(3)))
    await claim(engine, 3, lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q, limit=2)).counts == (2, 0)
    assert (await engine.reap(Q, limit=2)).counts == (1, 0)
    assert (await engine.counts(Q)).waiting == 3


async def test_active_entry_without_a_hash_is_dropped(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    await claim_one(engine, lease_ms=50)
    raw.delete(keys.job("a"))
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (0, 0)
    assert raw.zcard(keys.active) == 0
    assert raw.exists(keys.job("a")) == 0
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.dead) == (0, 0)


async def test_reap_on_an_empty_queue(engine: Engine) -> None:
    assert (await engine.reap(Q)).counts == (0, 0)
