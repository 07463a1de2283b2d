"""reschedule.lua: Retry(delay=...) runs the job again later without counting an attempt."""

from __future__ import annotations

import asyncio
import json

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.engine.outcomes import Rescheduled

from .helpers import Q, add, claim, claim_one, events, new_job, server_ms


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
    assert h.get("tk", "~")[0] == "~"  # spent: no token matches any more
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
    assert (await engine.counts(Q)).waiting == 1
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
    assert h.get("tk", "~")[0] == "~"  # spent: no token matches any more
    counts = await engine.counts(Q)
    assert (counts.dead, counts.waiting, counts.delayed, counts.active) == (1, 0, 0, 0)


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


# -- RateLimited: hold the whole group -------------------------------------------------------


async def test_hold_skips_the_group_until_its_time_while_others_are_served(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(
        engine,
        new_job("a1", group="a"),
        new_job("a2", group="a"),
        new_job("b1", group="b"),
        new_job("b2", group="b"),
    )
    job = await claim_one(engine)
    assert job.id == "a1"
    raw.delete(keys.marker)
    before = server_ms(raw)
    assert await engine.reschedule(Q, "a1", job.token, 0, "429", hold_ms=200) == 1

    h = raw.hgetall(keys.job("a1"))
    assert h["st"] == "waiting"  # keeps its place in the group, not delayed
    assert (h["a"], h["rs"]) == ("0", "1")
    assert h.get("tk", "~")[0] == "~"  # spent: no token matches any more
    assert raw.zcard(keys.delayed) == 0
    until = raw.zscore(keys.base + "limited", "a")
    assert until is not None
    assert before + 200 <= until <= server_ms(raw) + 200
    assert raw.zscore(keys.ready, "a") is None
    assert raw.hexists(keys.gactive, "a") is False
    assert raw.zscore(keys.marker, "m") is not None
    assert ("rate_limited", "a1") in events(raw, engine)
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active) == (4, 0)

    result = await engine.claim(Q, 10, "w1", 30_000)
    assert [j.id for j in result.jobs] == ["b1", "b2"]
    assert result.next_due_ms is not None
    assert 100 <= result.next_due_ms <= 200
    assert (await engine.claim(Q, 10, "w1", 30_000)).jobs == []

    await asyncio.sleep(result.next_due_ms / 1000 + 0.02)
    result = await engine.claim(Q, 10, "w1", 30_000)
    assert [(j.id, j.attempt) for j in result.jobs] == [("a1", 1), ("a2", 1)]
    assert raw.zcard(keys.base + "limited") == 0


async def test_new_jobs_of_a_held_group_wait_too(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"))
    job = await claim_one(engine)
    await engine.reschedule(Q, "a1", job.token, 0, "", hold_ms=60_000)
    await add(engine, new_job("a2", group="a"), new_job("u"))
    assert raw.zscore(keys.ready, "a") is None
    assert [j.id for j in await claim(engine, 10)] == ["u"]


async def test_a_shorter_hold_does_not_shorten_a_longer_one(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("a2", group="a"))
    a1, a2 = await claim(engine, 2)
    await engine.reschedule(Q, "a1", a1.token, 0, "", hold_ms=60_000)
    long_until = raw.zscore(keys.base + "limited", "a")
    await engine.reschedule(Q, "a2", a2.token, 0, "", hold_ms=100)
    assert raw.zscore(keys.base + "limited", "a") == long_until
    await asyncio.sleep(0.15)
    assert await claim(engine, 10) == []


async def test_hold_on_an_ungrouped_job_delays_only_that_job(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    job = await claim_one(engine)
    before = server_ms(raw)
    assert await engine.reschedule(Q, "a", job.token, 50, "", hold_ms=5_000) == 1
    assert raw.hget(keys.job("a"), "st") == "delayed"
    due = raw.zscore(keys.delayed, "a")
    assert due is not None
    assert before + 5_000 <= due <= server_ms(raw) + 5_000  # the longer of delay and hold
    assert raw.zcard(keys.base + "limited") == 0
    assert [j.id for j in await claim(engine, 10)] == ["b"]


async def test_hold_counts_as_a_reschedule(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g", max_reschedules=0))
    job = await claim_one(engine)
    assert await engine.reschedule(Q, "a", job.token, 0, "", hold_ms=60_000) == 2
    assert raw.hget(keys.job("a"), "dr") == "rescheduled_too_often"
    assert raw.zcard(keys.base + "limited") == 0


async def test_a_job_cancelled_while_running_is_not_rescheduled(
    engine: Engine, raw: redis.Redis
) -> None:

    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.cancel(Q, "a", "ops", "stop it")
    assert await engine.reschedule(Q, "a", job.token, 0, "429") is Rescheduled.CANCELLED
    assert raw.hget(engine.keys(Q).job("a"), "st") == "cancelled"
