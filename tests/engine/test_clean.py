"""clean.lua: delete ended jobs that finished before a cutoff, paging through the set."""

from __future__ import annotations

import pytest
import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.errors import ConfigError

from .helpers import Q, add, claim, error, events, new_job

CUTOFF = 1_000_000


async def _complete_all(engine: Engine, ids: list[str]) -> None:
    await add(engine, *(new_job(i) for i in ids))
    jobs = await claim(engine, len(ids))
    assert await engine.complete(Q, [(j.id, j.token, "1") for j in jobs]) == [True] * len(ids)


def _set_finished(raw: redis.Redis, keys: QueueKeys, finished: dict[str, int]) -> None:
    for job_id, fa in finished.items():
        raw.hset(keys.job(job_id), "fa", fa)


async def test_clean_deletes_only_jobs_finished_before_the_cutoff(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await _complete_all(engine, ["old1", "new1", "old2", "edge", "new2"])
    _set_finished(
        raw,
        keys,
        {"old1": CUTOFF - 5, "new1": CUTOFF + 5, "old2": CUTOFF - 1, "edge": CUTOFF, "new2": 2**40},
    )
    assert await ops.clean_step(Q, "completed", CUTOFF, 0, batch=100) == (2, -1)
    assert sorted(raw.zrange(keys.completed, 0, -1)) == ["edge", "new1", "new2"]
    assert raw.exists(keys.job("old1"), keys.job("old2")) == 0
    assert raw.exists(keys.job("edge"), keys.job("new1"), keys.job("new2")) == 3
    assert events(raw, engine)[-1] == ("cleaned", "")
    assert raw.xrevrange(keys.events, count=1)[0][1]["n"] == "2"
    assert (await engine.counts(Q)).completed == 3


async def test_clean_pages_through_with_the_returned_index(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    ids = [f"j{i}" for i in range(7)]
    await _complete_all(engine, ids)
    # j0, j2, j3, j6 are old; the rest finished after the cutoff
    old = {"j0", "j2", "j3", "j6"}
    _set_finished(raw, keys, {i: CUTOFF - 1 if i in old else CUTOFF + 1 for i in ids})
    order = raw.zrange(keys.completed, 0, -1)

    steps = []
    start, total = 0, 0
    while start >= 0:
        removed, nxt = await ops.clean_step(Q, "completed", CUTOFF, start, batch=3)
        steps.append((start, removed, nxt))
        assert len(steps) < 10
        total += removed
        start = nxt
    assert total == 4
    assert sorted(raw.zrange(keys.completed, 0, -1)) == sorted(set(ids) - old)
    assert [i for i in ids if raw.exists(keys.job(i))] == sorted(set(ids) - old)

    # each step resumes exactly after the survivors it already looked at
    expected, start = [], 0
    remaining = list(order)
    while True:
        page = remaining[start : start + 3]
        gone = [i for i in page if i in old]
        remaining = [i for i in remaining if i not in gone]
        nxt = start + 3 - len(gone) if len(page) == 3 else -1
        expected.append((start, len(gone), nxt))
        if nxt < 0:
            break
        start = nxt
    assert steps == expected


async def test_clean_when_the_set_is_an_exact_multiple_of_the_batch(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await _complete_all(engine, ["a", "b"])
    _set_finished(raw, keys, {"a": CUTOFF + 1, "b": CUTOFF + 1})
    assert await ops.clean_step(Q, "completed", CUTOFF, 0, batch=2) == (0, 2)
    assert await ops.clean_step(Q, "completed", CUTOFF, 2, batch=2) == (0, -1)


async def test_clean_dead_set_includes_cancelled_jobs(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("failed"), new_job("young"), new_job("done"), new_job("cx"))
    failed, young, done = await claim(engine, 3)
    await engine.touch(Q, failed.id, failed.token, log_line="trying")
    await engine.fail(Q, "failed", failed.token, error(), retry_delay_ms=None, reason="x")
    await engine.fail(Q, "young", young.token, error(), retry_delay_ms=None, reason="x")
    await engine.complete(Q, [(done.id, done.token, "1")])
    await ops.cancel(Q, "cx", "op", "")
    _set_finished(raw, keys, {"failed": 10, "cx": 20, "young": CUTOFF + 1, "done": 10})

    assert await ops.clean_step(Q, "dead", CUTOFF, 0) == (2, -1)
    assert raw.zrange(keys.dead, 0, -1) == ["young"]
    assert raw.exists(keys.job("failed"), keys.log("failed"), keys.job("cx")) == 0
    assert raw.zrange(keys.completed, 0, -1) == ["done"]  # the other set is not touched


async def test_clean_an_empty_set(engine: Engine, ops: Engine) -> None:
    assert await ops.clean_step(Q, "completed", CUTOFF, 0) == (0, -1)
    assert await ops.clean_step(Q, "dead", CUTOFF, 0) == (0, -1)


async def test_clean_entry_without_a_hash_is_dropped(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    raw.zadd(keys.completed, {"ghost": 1})
    assert await ops.clean_step(Q, "completed", CUTOFF, 0) == (1, -1)
    assert raw.zcard(keys.completed) == 0


@pytest.mark.parametrize("state", ["waiting", "active", "delayed", ""])
async def test_clean_refuses_other_states(engine: Engine, ops: Engine, state: str) -> None:
    with pytest.raises(ConfigError):
        await ops.clean_step(Q, state, CUTOFF, 0)


async def test_clean_refuses_an_empty_batch(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await _complete_all(engine, ["a"])
    _set_finished(raw, keys, {"a": 1})
    with pytest.raises(ConfigError):
        await ops.clean_step(Q, "completed", CUTOFF, 0, batch=0)
    assert raw.exists(keys.job("a")) == 1
