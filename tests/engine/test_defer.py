"""defer.lua: a job whose name the worker does not know goes back for another worker, without
counting an attempt, until its grace is over; then it is dead ``unknown_job``."""

from __future__ import annotations

import asyncio
import json

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.engine.outcomes import Deferred

from .helpers import Q, add, claim_one, error, events, new_job, server_ms


async def test_defer_hands_back_without_counting_and_stamps_the_first_time(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    job = await claim_one(engine)
    before = server_ms(raw)
    assert await engine.defer(Q, "a", job.token, 50, 60_000, error()) == 1
    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["a"]) == ("delayed", "0")
    assert h.get("tk", "~")[0] == "~"  # spent: no token matches any more
    assert "wk" not in h and "eh" not in h and "rs" not in h
    assert before <= int(h["uk"].split(":")[0]) <= server_ms(raw)
    assert h["uk"].endswith(":0:0")  # the attempt and reschedules it was unknown at
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    assert ("deferred", "a") in events(raw, engine)

    await asyncio.sleep(0.08)
    again = await claim_one(engine)
    assert (again.id, again.attempt) == ("a", 1)
    stamp = raw.hget(keys.job("a"), "uk")
    assert await engine.defer(Q, "a", again.token, 50, 60_000, error()) == 1
    assert raw.hget(keys.job("a"), "uk") == stamp  # the first hand-back counts, not the last


async def test_defer_past_the_grace_is_dead_with_the_error(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.defer(Q, "a", job.token, 0, 0, error("gone", 0, "UnknownJob")) == 2
    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["dr"]) == ("dead", "unknown_job")
    assert json.loads(h["le"])["type"] == "UnknownJob"
    assert raw.zscore(keys.dead, "a") is not None


async def test_defer_waits_longer_the_longer_the_job_is_unknown(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    raw.hset(keys.job("a"), "uk", f"{server_ms(raw) - 20_000}:0:0")  # unknown for 20 s already
    now = server_ms(raw)
    assert await engine.defer(Q, "a", job.token, 1000, 600_000, error()) == 1
    due = raw.zscore(keys.delayed, "a")
    assert due is not None and due >= now + 10_000  # half the time it has been unknown


async def test_defer_refuses_a_stale_token_and_ends_a_cancelled_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    a = await claim_one(engine)
    assert await engine.defer(Q, "a", "999", 0, 60_000, error()) == 0
    assert raw.hget(keys.job("a"), "st") == "active"
    assert await ops.cancel(Q, "a", "op", "stop") == 2
    assert await engine.defer(Q, "a", a.token, 0, 60_000, error()) is Deferred.CANCELLED
    assert raw.hget(keys.job("a"), "st") == "cancelled"


async def test_replay_gives_an_unknown_job_a_fresh_grace(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.defer(Q, "a", job.token, 0, 0, error()) == 2
    assert await ops.replay(Q, ["a"], "op") == 1
    assert raw.hexists(keys.job("a"), "uk") is False


async def test_a_run_by_a_worker_that_knows_the_job_ends_its_unknown_spell(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    """Unknown long ago, then run (and failed) by a worker that knows it, then unknown again
    (a rollback): the grace counts from the new hand-back, not the old one."""
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.defer(Q, "a", job.token, 0, 60_000, error()) == 1
    raw.hset(keys.job("a"), "uk", f"{server_ms(raw) - 3_600_000}:0:0")  # an hour ago
    await asyncio.sleep(0.01)
    known = await claim_one(engine)
    assert await engine.fail(Q, "a", known.token, error(), retry_delay_ms=0)
    again = await claim_one(engine)
    assert await engine.defer(Q, "a", again.token, 0, 60_000, error()) == 1  # not dead
    stamp, attempt, _ = raw.hget(keys.job("a"), "uk").split(":")
    assert int(stamp) >= server_ms(raw) - 5_000 and attempt == "1"
