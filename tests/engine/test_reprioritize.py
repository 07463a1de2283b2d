"""reprioritize.lua: change the priority of a waiting or delayed job, keeping its FIFO place."""

from __future__ import annotations

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, new_job


async def test_reprioritize_reorders_waiting_jobs(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", priority=5), new_job("b", priority=5), new_job("c", priority=5))
    assert await ops.reprioritize(Q, "c", 0) == 1
    assert raw.hget(keys.job("c"), "p") == "0"
    assert await ops.list_ids(Q, "waiting", 0, 10, newest_first=False) == ["c", "a", "b"]
    assert [j.id for j in await claim(engine, 3)] == ["c", "a", "b"]


async def test_equal_priorities_keep_fifo_order(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("a", priority=1), new_job("b", priority=9), new_job("c", priority=9))
    # c and b both move to 0: they keep the order they were enqueued in
    assert await ops.reprioritize(Q, "c", 0) == 1
    assert await ops.reprioritize(Q, "b", 0) == 1
    assert [j.id for j in await claim(engine, 3)] == ["b", "c", "a"]


async def test_reprioritize_within_a_group(engine: Engine, ops: Engine) -> None:
    await add(
        engine,
        new_job("a1", group="a"),
        new_job("a2", group="a"),
        new_job("b1", group="b"),
    )
    assert await ops.reprioritize(Q, "a2", -1) == 1
    # the priority orders jobs inside the group; groups still take turns
    assert [j.id for j in await claim(engine, 3)] == ["a2", "b1", "a1"]


async def test_list_ids_merges_groups_by_priority(engine: Engine, ops: Engine) -> None:
    await add(
        engine,
        new_job("a1", group="a", priority=3),
        new_job("b1", group="b", priority=2),
        new_job("u1", priority=1),
    )
    assert await ops.reprioritize(Q, "a1", 0) == 1
    assert await ops.list_ids(Q, "waiting", 0, 10, newest_first=False) == ["a1", "u1", "b1"]
    assert await ops.list_ids(Q, "waiting", 0, 10, newest_first=True) == ["b1", "u1", "a1"]
    assert await ops.list_ids(Q, "waiting", 1, 1, newest_first=False) == ["u1"]


async def test_reprioritize_delayed_job_applies_when_it_is_due(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("w", priority=5), new_job("d", priority=9, delay_ms=60_000))
    assert await ops.reprioritize(Q, "d", 0) == 1
    assert raw.hget(keys.job("d"), "p") == "0"
    assert raw.hget(keys.job("d"), "st") == "delayed"
    assert await ops.promote(Q, "d") == 1
    assert [j.id for j in await claim(engine, 2)] == ["d", "w"]


async def test_reprioritize_refuses_other_states(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("active"), new_job("done"))
    _active, done = await claim(engine, 2)
    await engine.complete(Q, [(done.id, done.token, "1")])
    assert await ops.reprioritize(Q, "missing", 7) == -1
    for job_id in ("active", "done"):
        assert await ops.reprioritize(Q, job_id, 7) == 0
    assert raw.hget(keys.job("active"), "p") == "0"
    assert raw.hget(keys.job("done"), "p") == "0"
    assert raw.exists(keys.job("missing")) == 0


async def test_waiting_state_without_an_entry_is_refused(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    raw.zrem(keys.waiting(""), "a")
    assert await ops.reprioritize(Q, "a", 3) == 0
    assert raw.zcard(keys.waiting("")) == 0  # no entry is created by the change
    assert raw.hget(keys.job("a"), "p") == "0"


async def test_reprioritize_an_unknown_job_says_so(ops: Engine) -> None:
    assert await ops.reprioritize(Q, "nope", 3) == -1
