"""drain.lua: delete waiting and delayed jobs, a bounded number per call; running jobs stay."""

from __future__ import annotations

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, events, new_job


async def test_drain_is_bounded_per_call_and_reports_what_remains(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"d{i}", delay_ms=60_000) for i in range(4)))
    await add(engine, *(new_job(f"w{i}") for i in range(5)))
    steps = []
    while True:
        removed, remaining = await ops.drain_step(Q, limit=3)
        steps.append((removed, remaining))
        if remaining == 0:
            break
    assert steps == [(3, 6), (3, 3), (3, 0)]
    assert not [i for i in range(4) if raw.exists(keys.job(f"d{i}"))]
    assert not [i for i in range(5) if raw.exists(keys.job(f"w{i}"))]
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.delayed) == (0, 0)
    assert raw.zcard(keys.ready) == 0
    assert await ops.drain_step(Q, limit=3) == (0, 0)


async def test_drain_leaves_running_and_ended_jobs_alone(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("run", group="g"), new_job("done"), new_job("w1", group="g"))
    await add(engine, new_job("w2"))
    jobs = {j.id: j for j in await claim(engine, 2)}
    run, done = jobs["run"], jobs["done"]
    await engine.complete(Q, [(done.id, done.token, "1")])

    assert await ops.drain_step(Q) == (2, 0)
    assert raw.exists(keys.job("w1"), keys.job("w2")) == 0
    assert raw.hget(keys.job("run"), "st") == "active"
    assert raw.hget(keys.job("done"), "st") == "completed"
    # the group keeps its slot accounting while its job runs, and is forgotten after
    assert raw.sismember(keys.base + "groups", "g") == 1
    assert raw.zscore(keys.ready, "g") is None
    assert await engine.complete(Q, [(run.id, run.token, "1")]) == [True]
    assert raw.sismember(keys.base + "groups", "g") == 0
    assert await claim(engine, 5) == []


async def test_drain_empties_every_group(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"{g}{i}", group=g) for g in "abc" for i in range(3)))
    assert await ops.drain_step(Q) == (9, 0)
    assert raw.zcard(keys.ready) == 0
    assert raw.scard(keys.base + "groups") == 0
    assert (await engine.counts(Q)).waiting == 0
    removed = [(kind, job) for kind, job in events(raw, engine) if kind == "removed"]
    assert sorted(removed) == [("removed", f"{g}{i}") for g in "abc" for i in range(3)]


async def test_drain_finds_waiting_jobs_among_many_busy_groups(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    # 300 groups with only a running job each, and three groups with waiting jobs
    await add(engine, *(new_job(f"busy{i}", group=f"busy{i:03d}") for i in range(300)))
    assert len(await claim(engine, 300)) == 300
    await add(engine, *(new_job(f"w{g}", group=g) for g in ("x", "y", "z")))
    assert await ops.drain_step(Q) == (3, 0)
    assert (await engine.counts(Q)).active == 300


async def test_drain_with_a_zero_limit_removes_nothing(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("d", delay_ms=60_000), new_job("w"))
    assert await ops.drain_step(Q, limit=0) == (0, 2)
    assert raw.exists(keys.job("d"), keys.job("w")) == 2


async def test_a_drained_queue_accepts_new_work(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("a", group="g"), new_job("b"))
    assert await ops.drain_step(Q) == (2, 0)
    await add(engine, new_job("c", group="g"), new_job("a", group="g"))
    assert [j.id for j in await claim(engine, 5)] == ["c", "a"]
