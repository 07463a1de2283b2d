"""remove.lua: delete a job that is not running, from whichever set holds it."""

from __future__ import annotations

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, claim_one, error, events, new_job


async def test_remove_waiting_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    assert await ops.remove(Q, "a") == 1
    assert raw.exists(keys.job("a")) == 0
    assert raw.zrange(keys.waiting(""), 0, -1) == ["b"]
    assert (await engine.counts(Q)).waiting == 1
    assert events(raw, engine)[-1] == ("removed", "a")
    assert [j.id for j in await claim(engine, 5)] == ["b"]


async def test_remove_last_waiting_job_of_a_group(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    assert await ops.remove(Q, "a") == 1
    assert raw.zscore(keys.ready, "g") is None
    assert raw.sismember(keys.base + "groups", "g") == 0
    assert (await engine.counts(Q)).waiting == 0
    assert await claim(engine, 5) == []


async def test_remove_delayed_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", delay_ms=60_000))
    assert await ops.remove(Q, "a") == 1
    assert raw.zcard(keys.delayed) == 0
    assert raw.exists(keys.job("a")) == 0


async def test_remove_ended_jobs_with_their_logs(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("done"), new_job("dead"), new_job("cx"))
    done, dead = await claim(engine, 2)
    await engine.touch(Q, done.id, done.token, log_line="hello")
    await engine.complete(Q, [(done.id, done.token, "1")])
    await engine.fail(Q, dead.id, dead.token, error(), retry_delay_ms=None, reason="failed")
    await ops.cancel(Q, "cx", "op", "")
    assert raw.exists(keys.log("done")) == 1

    for job_id in ("done", "dead", "cx"):
        assert await ops.remove(Q, job_id) == 1
        assert raw.exists(keys.job(job_id), keys.log(job_id)) == 0
    assert raw.zcard(keys.completed) == 0
    assert raw.zcard(keys.dead) == 0
    counts = await engine.counts(Q)
    assert (counts.completed, counts.dead) == (0, 0)


async def test_remove_refuses_a_running_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    job = await claim_one(engine)
    before = raw.hgetall(keys.job("a"))
    assert await ops.remove(Q, "a") == -2
    assert raw.hgetall(keys.job("a")) == before
    assert raw.zscore(keys.active, "a") is not None
    assert raw.hget(keys.gactive, "g") == "1"
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]


async def test_remove_missing_job(engine: Engine, ops: Engine, raw: redis.Redis) -> None:
    assert await ops.remove(Q, "nope") == 0
    assert ("removed", "nope") not in events(raw, engine)


async def test_remove_a_hash_without_state(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    raw.hset(keys.job("junk"), mapping={"n": "task"})
    assert await ops.remove(Q, "junk") == 1
    assert raw.exists(keys.job("junk")) == 0


async def test_remove_a_payload_left_without_its_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    raw.delete(keys.job("a"))
    assert await ops.remove(Q, "a") == 1
    assert raw.exists(keys.payload("a")) == 0
    assert await add(engine, new_job("a")) == [True]


async def test_remove_twice(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("a"))
    assert await ops.remove(Q, "a") == 1
    assert await ops.remove(Q, "a") == 0
    # the id is free again
    assert await add(engine, new_job("a")) == [True]
