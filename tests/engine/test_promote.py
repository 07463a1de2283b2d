"""promote.lua: a delayed (or backing-off) job becomes waiting now."""

from __future__ import annotations

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, claim_one, error, events, new_job


async def test_promote_delayed_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", delay_ms=60_000, group="g"), new_job("b", delay_ms=60_000))
    raw.delete(keys.marker)
    assert await ops.promote(Q, "a") == 1

    assert raw.hget(keys.job("a"), "st") == "waiting"
    assert raw.zrange(keys.delayed, 0, -1) == ["b"]
    assert raw.zrange(keys.waiting("g"), 0, -1) == ["a"]
    assert raw.zscore(keys.ready, "g") is not None
    assert raw.zscore(keys.marker, "m") is not None
    assert events(raw, engine)[-1] == ("promoted", "a")
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.delayed) == (1, 1)

    job = await claim_one(engine)
    assert (job.id, job.attempt) == ("a", 1)


async def test_promote_keeps_priority(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("low", priority=5), new_job("urgent", priority=0, delay_ms=60_000))
    assert await ops.promote(Q, "urgent") == 1
    assert [j.id for j in await claim(engine, 2)] == ["urgent", "low"]


async def test_promote_a_job_backing_off_after_a_failure(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.fail(Q, job.id, job.token, error(), retry_delay_ms=60_000)
    assert await ops.promote(Q, "a") == 1
    again = await claim_one(engine)
    assert (again.id, again.attempt) == ("a", 2)


async def test_promote_refuses_jobs_that_are_not_delayed(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("active"), new_job("done"), new_job("waiting"))
    active, done = await claim(engine, 2)
    assert (active.id, done.id) == ("active", "done")
    await engine.complete(Q, [(done.id, done.token, "1")])
    snapshot = {i: raw.hgetall(keys.job(i)) for i in ("waiting", "active", "done")}

    for job_id in ("waiting", "active", "done"):
        assert await ops.promote(Q, job_id) == 0
    assert await ops.promote(Q, "missing") == -1
    assert {i: raw.hgetall(keys.job(i)) for i in ("waiting", "active", "done")} == snapshot
    assert raw.exists(keys.job("missing")) == 0
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.completed) == (1, 1, 1)


async def test_promote_twice(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("a", delay_ms=60_000))
    assert await ops.promote(Q, "a") == 1
    assert await ops.promote(Q, "a") == 0
    assert (await engine.counts(Q)).waiting == 1


async def test_delayed_state_without_a_delayed_entry_is_not_promoted(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", delay_ms=60_000))
    raw.zrem(keys.delayed, "a")
    assert await ops.promote(Q, "a") == 0
    assert (await engine.counts(Q)).waiting == 0


async def test_promote_an_unknown_job_says_so(ops: Engine) -> None:
    assert await ops.promote(Q, "nope") == -1
