"""release.lua: hand active jobs back to waiting (graceful shutdown), attempt not counted."""

from __future__ import annotations

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, claim_one, error, events, new_job


async def test_release_hands_jobs_back_without_counting_the_attempt(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"), new_job("b", group="g"))
    a, b = await claim(engine, 2)
    raw.delete(keys.marker)
    assert await engine.release(Q, [(a.id, a.token), (b.id, b.token)]) == 2

    for job_id in ("a", "b"):
        h = raw.hgetall(keys.job(job_id))
        assert h["st"] == "waiting"
        assert h["a"] == "0"
        assert "tk" not in h
        assert "wk" not in h
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    assert raw.zscore(keys.marker, "m") is not None  # other workers are woken
    assert ("released", "a") in events(raw, engine)
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active) == (2, 0)

    again = await claim(engine, 2)
    assert [(j.id, j.attempt) for j in again] == [("a", 1), ("b", 1)]


async def test_released_job_keeps_its_place(engine: Engine) -> None:
    await add(engine, new_job("first"), new_job("second"), new_job("third"))
    first = await claim_one(engine)
    assert await engine.release(Q, [(first.id, first.token)]) == 1
    assert [j.id for j in await claim(engine, 3)] == ["first", "second", "third"]


async def test_release_on_a_retried_job_keeps_earlier_attempts(engine: Engine) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.fail(Q, "a", job.token, error(), retry_delay_ms=0)
    job = await claim_one(engine)
    assert job.attempt == 2
    await engine.release(Q, [(job.id, job.token)])
    assert (await claim_one(engine)).attempt == 2


async def test_stale_or_unknown_items_are_skipped(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    a, b = await claim(engine, 2)
    released = await engine.release(Q, [(a.id, "stale"), ("missing", b.token), (b.id, b.token)])
    assert released == 1
    assert raw.hget(keys.job("a"), "st") == "active"
    assert raw.hget(keys.job("a"), "tk") == a.token
    assert raw.hget(keys.job("b"), "st") == "waiting"
    assert raw.exists(keys.job("missing")) == 0


async def test_releasing_twice_counts_once(engine: Engine) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.release(Q, [(job.id, job.token)]) == 1
    assert await engine.release(Q, [(job.id, job.token)]) == 0
    assert (await engine.counts(Q)).waiting == 1


async def test_release_nothing(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    assert await engine.release(Q, []) == 0
    assert raw.exists(keys.marker) == 0


async def test_a_job_cancelled_while_running_is_not_handed_back(
    engine: Engine, raw: redis.Redis
) -> None:

    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.cancel(Q, "a", "ops", "stop it")
    await engine.release(Q, [("a", job.token)])
    assert raw.hget(engine.keys(Q).job("a"), "st") == "cancelled"
    assert await claim(engine, 5) == []
