"""reschedule.lua: Retry(delay=...) runs the job again later without counting an attempt."""

from __future__ import annotations

import asyncio
import json

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim_one, events, new_job, server_ms


async def test_reschedule_with_delay_does_not_count_the_attempt(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    job = await claim_one(engine)
    before = server_ms(raw)
    assert await engine.reschedule(Q, "a", job.token, 60, "not yet") == 1

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "delayed"
    assert h["a"] == "0"
    assert h["rs"] == "1"
    assert "tk" not in h
    assert "wk" not in h
    assert "eh" not in h  # not a failure: no error recorded
    due = raw.zscore(keys.delayed, "a")
    assert due is not None
    assert before + 60 <= due <= server_ms(raw) + 60
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    assert ("rescheduled", "a") in events(raw, engine)

    await asyncio.sleep(0.08)
    again = await claim_one(engine)
    assert (again.id, again.attempt) == ("a", 1)


async def test_reschedule_without_delay_goes_back_to_waiting(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.reschedule(Q, "a", job.token, 0, "") == 1
    assert raw.hget(keys.job("a"), "st") == "waiting"
    assert raw.zcard(keys.delayed) == 0
    assert (await engine.counts(Q))["waiting"] == 1
    assert (await claim_one(engine)).attempt == 1


async def test_goes_dead_past_max_reschedules(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_reschedules=2))
    for expected in (1, 1):
        job = await claim_one(engine)
        assert await engine.reschedule(Q, "a", job.token, 0, "again") == expected
    job = await claim_one(engine)
    assert job.attempt == 1
    assert await engine.reschedule(Q, "a", job.token, 0, "third time") == 2

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "dead"
    assert h["dr"] == "rescheduled_too_often"
    assert h["rs"] == "3"
    err = json.loads(h["le"])
    assert err["type"] == "Retry"
    assert "third time" in err["message"]
    assert "limit 2" in err["message"]
    assert "tk" not in h
    counts = await engine.counts(Q)
    assert (counts["dead"], counts["waiting"], counts["delayed"], counts["active"]) == (1, 0, 0, 0)


async def test_zero_max_reschedules_goes_dead_at_once(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_reschedules=0))
    job = await claim_one(engine)
    assert await engine.reschedule(Q, "a", job.token, 1000, "") == 2
    assert raw.hget(keys.job("a"), "dr") == "rescheduled_too_often"


async def test_reschedules_do_not_use_up_attempts(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_attempts=1, max_reschedules=10))
    for _ in range(5):
        job = await claim_one(engine)
        assert job.attempt == 1
        assert await engine.reschedule(Q, "a", job.token, 0, "") == 1
    assert raw.hget(keys.job("a"), "rs") == "5"


async def test_stale_token_is_refused(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    before = raw.hgetall(keys.job("a"))
    assert await engine.reschedule(Q, "a", "stale", 0, "") == 0
    assert await engine.reschedule(Q, "missing", job.token, 0, "") == 0
    assert raw.hgetall(keys.job("a")) == before
    assert raw.zscore(keys.active, "a") is not None
    await engine.complete(Q, [(job.id, job.token, "1")])
    assert await engine.reschedule(Q, "a", job.token, 0, "") == 0
    assert raw.hget(keys.job("a"), "st") == "completed"
