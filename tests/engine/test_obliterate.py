"""Ops.obliterate_step: unlink every key of one queue, a bounded number per call."""

from __future__ import annotations

from typing import cast

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys, registry_key
from corral.models import QueueCounts

from .helpers import Q, add, claim, claim_one, error, new_job, queue_keys


def _scan(raw: redis.Redis, pattern: str) -> list[str]:
    return sorted(cast(list[str], list(raw.scan_iter(match=pattern, count=1000))))


async def _populate(engine: Engine, ops: Engine, queue: str) -> None:
    """Jobs in every state, logs, a waiter, groups, limits and events."""
    jobs = [new_job(f"j{i}", group=f"g{i % 3}") for i in range(8)]
    await add(engine, *jobs, new_job("later", delay_ms=60_000), queue=queue)
    await engine.configure(queue, gconc=5, rate_n=100, rate_w=1000, grate_n=50, grate_w=1000)
    await engine.group_action(queue, "pause", "g2")
    await engine.group_action(queue, "limits", "g1", concurrency="3", rate="9:1000", weight="2")
    done, dead, run, slow = await claim(engine, 4, queue=queue)
    await engine.touch(queue, done.id, done.token, log_line="hi")
    await engine.complete(queue, [(done.id, done.token, "1")])
    await engine.fail(queue, dead.id, dead.token, error(), retry_delay_ms=None, reason="x")
    await engine.reschedule(queue, slow.id, slow.token, 0, "", hold_ms=60_000)
    await engine.watch(queue, run.id)
    await ops.cancel(queue, run.id, "op", "")
    await ops.cancel(queue, "j7", "op", "")


async def test_obliterate_deletes_every_key_of_the_queue_only(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await _populate(engine, ops, Q)
    await _populate(engine, ops, "q2")
    await add(engine, new_job("x"), queue="q.other")
    mine = _scan(raw, keys.base + "*")
    assert len(mine) > 10
    others = {q: _scan(raw, engine.keys(q).base + "*") for q in ("q2", "q.other")}
    other_values = {k: raw.dump(k) for ks in others.values() for k in ks}
    # plenty of unrelated keys, so one small SCAN page from cursor 0 misses the queue's keys
    filler = f"{engine.prefix}:filler:"
    for start in range(0, 20_000, 1000):
        raw.mset({f"{filler}{i}": "1" for i in range(start, start + 1000)})
    try:
        steps = []
        while True:
            n = await ops.obliterate_step(Q, count=5)
            steps.append(n)
            assert len(steps) < 100
            if n == 0:
                break
        assert all(0 < n <= 5 for n in steps[:-1])
        assert sum(steps) == len(mine) - 1  # all but meta, which goes last
        assert _scan(raw, keys.base + "*") == []
        assert raw.exists(keys.meta) == 0
        assert Q not in raw.smembers(registry_key(engine.prefix))
        for q, ks in others.items():
            assert _scan(raw, engine.keys(q).base + "*") == ks
            assert q in raw.smembers(registry_key(engine.prefix))
        assert {k: raw.dump(k) for ks in others.values() for k in ks} == other_values
    finally:
        for start in range(0, 20_000, 1000):
            raw.unlink(*(f"{filler}{i}" for i in range(start, start + 1000)))


async def test_an_obliterated_queue_can_be_used_again(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"), new_job("b"))
    while await ops.obliterate_step(Q):
        pass
    assert queue_keys(raw, engine) == []
    assert await engine.queues() == []
    await add(engine, new_job("a", group="g"))
    assert await engine.queues() == [Q]
    job = await claim_one(engine)
    assert (job.id, job.attempt) == ("a", 1)
    assert await engine.counts(Q) == QueueCounts(Q, 0, 0, 1, 0, 0, False, 0, 0)


async def test_obliterate_an_unknown_queue(engine: Engine, ops: Engine) -> None:
    assert await ops.obliterate_step("never-used") == 0
