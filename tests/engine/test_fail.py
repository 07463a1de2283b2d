"""fail.lua: a failed attempt goes back (now or after a delay) or to the dead set; fenced."""

from __future__ import annotations

import asyncio
import json

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.engine.outcomes import Failed
from corral.engine.schema import encode_error

from .helpers import DAY_MS, Q, add, claim, claim_one, error, events, new_job, server_ms


async def test_retry_without_delay_goes_back_to_waiting(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    job = await claim_one(engine)
    err = error("first", attempt=1)
    assert await engine.fail(Q, job.id, job.token, err, retry_delay_ms=0) is Failed.RECORDED

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "waiting"
    assert h["a"] == "1"  # the attempt was counted at claim and stays counted
    assert h["le"] == encode_error(err)
    assert [e["message"] for e in json.loads(h["eh"])] == ["first"]
    assert h.get("tk", "~")[0] == "~"  # spent: no token matches any more
    assert "wk" not in h
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    assert ("retrying", "a") in events(raw, engine)
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.dead) == (1, 0, 0)

    again = await claim_one(engine)
    assert (again.id, again.attempt) == ("a", 2)


async def test_retry_with_delay_goes_to_delayed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    before = server_ms(raw)
    assert await engine.fail(Q, job.id, job.token, error(), retry_delay_ms=150) is Failed.RECORDED
    assert raw.hget(keys.job("a"), "st") == "delayed"
    due = raw.zscore(keys.delayed, "a")
    assert due is not None
    assert before + 150 <= due <= server_ms(raw) + 150

    result = await engine.claim(Q, 1, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms is not None
    assert result.next_due_ms <= 150
    await asyncio.sleep(0.2)
    again = await claim_one(engine)
    assert (again.id, again.attempt) == ("a", 2)


async def test_dead_records_reason_and_leaves_active(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    job = await claim_one(engine)
    before = server_ms(raw)
    err = error("fatal", kind="Fatal")
    assert await engine.fail(Q, job.id, job.token, err, retry_delay_ms=None, reason="fatal")

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "dead"
    assert h["dr"] == "fatal"
    assert h["le"] == encode_error(err)
    assert before <= int(h["fa"]) <= server_ms(raw)
    assert h.get("tk", "~")[0] == "~"  # spent: no token matches any more
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    expires = raw.zscore(keys.dead, "a")
    assert expires is not None
    assert expires >= before + 7 * DAY_MS  # dead jobs are kept a week by default
    assert events(raw, engine)[-1] == ("dead", "a")
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.dead) == (0, 0, 1)
    assert await claim(engine, 1) == []


async def test_per_job_keep_dead(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a", keep_dead_ms=1_000))
    job = await claim_one(engine)
    before = server_ms(raw)
    await engine.fail(Q, job.id, job.token, error(), retry_delay_ms=None, reason="x")
    expires = raw.zscore(keys.dead, "a")
    assert expires is not None
    assert before + 1_000 <= expires <= server_ms(raw) + 1_000


async def test_stale_token_is_refused_and_changes_nothing(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    before = raw.hgetall(keys.job("a"))
    assert await engine.fail(Q, "a", "stale", error(), retry_delay_ms=0) is Failed.REFUSED
    assert await engine.fail(Q, "a", "stale", error(), retry_delay_ms=None) is Failed.REFUSED
    assert await engine.fail(Q, "missing", job.token, error(), retry_delay_ms=0) is Failed.REFUSED
    assert raw.hgetall(keys.job("a")) == before
    assert raw.zscore(keys.active, "a") is not None
    assert raw.exists(keys.job("missing")) == 0


async def test_late_failure_after_reap_cannot_touch_the_new_attempt(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_stalls=3))
    old = await claim_one(engine, lease_ms=50)
    await asyncio.sleep(0.1)
    await engine.reap(Q)
    new = await claim_one(engine)
    assert await engine.fail(Q, "a", old.token, error(), retry_delay_ms=None) is Failed.REFUSED
    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["tk"]) == ("active", new.token)
    assert (await engine.counts(Q)).dead == 0


async def test_error_history_is_bounded_to_20(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_attempts=100))
    for i in range(1, 26):
        job = await claim_one(engine)
        assert job.attempt == i
        assert await engine.fail(Q, "a", job.token, error(f"e{i}", i), retry_delay_ms=0)
    history = json.loads(raw.hget(keys.job("a"), "eh") or "[]")
    assert len(history) == 20
    assert [e["message"] for e in history] == [f"e{i}" for i in range(6, 26)]
    assert json.loads(raw.hget(keys.job("a"), "le") or "{}")["message"] == "e25"


async def test_non_json_error_is_kept_readable(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    # the engine always sends JSON; the script must still cope with a hand-made call
    args = ["a", job.token, "not json {", "retry", 0, ""]
    assert await engine._run("fail", Q, args) == 1
    history = json.loads(raw.hget(keys.job("a"), "eh") or "[]")
    assert history == [{"type": "CorralError", "message": "not json {"}]


async def test_dead_set_is_trimmed_by_count(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, dead_max=2)
    await add(engine, *(new_job(f"j{i}") for i in range(4)))
    for job in await claim(engine, 4):
        await engine.fail(Q, job.id, job.token, error(), retry_delay_ms=None, reason="x")
    kept = raw.zrange(keys.dead, 0, -1)
    assert len(kept) == 2
    assert "j3" in kept
    assert [i for i in ("j0", "j1", "j2", "j3") if raw.exists(keys.job(i))] == sorted(kept)
    counts = await engine.counts(Q)
    assert (counts.dead, counts.dead_trimmed) == (2, 2)


async def test_dead_set_is_trimmed_by_age(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, dead_age=30)
    await add(engine, new_job("old"), new_job("new"))
    old, new = await claim(engine, 2)
    await engine.fail(Q, old.id, old.token, error(), retry_delay_ms=None, reason="x")
    await asyncio.sleep(0.06)
    await engine.fail(Q, new.id, new.token, error(), retry_delay_ms=None, reason="x")
    assert raw.zrange(keys.dead, 0, -1) == ["new"]
    assert raw.exists(keys.job("old")) == 0
    assert (await engine.counts(Q)).dead_trimmed == 1


async def test_a_job_cancelled_while_running_is_not_retried(
    engine: Engine, raw: redis.Redis
) -> None:

    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.cancel(Q, "a", "ops", "stop it") == 2
    assert await engine.fail(Q, "a", job.token, error(), retry_delay_ms=0) is Failed.CANCELLED
    assert raw.hget(engine.keys(Q).job("a"), "st") == "cancelled"
    assert raw.hget(engine.keys(Q).job("a"), "dr") == "cancelled"
    assert await claim(engine, 5) == []


async def test_a_write_sent_again_after_a_lost_reply_gets_the_same_answer(
    engine: Engine, ops: Engine, raw: redis.Redis
) -> None:
    """The connection dropped after the script ran, and the worker sends it again: it is told
    its write was recorded (not that its lease was lost), and nothing happens twice."""
    await add(engine, new_job("done"), new_job("retried"), new_job("dead"), new_job("cx"))
    jobs = {j.id: j for j in await claim(engine, 4)}
    for _ in range(2):
        assert await engine.complete(Q, [("done", jobs["done"].token, "1")]) == [True]
        retried = await engine.fail(
            Q, "retried", jobs["retried"].token, error(), retry_delay_ms=60_000
        )
        assert retried is Failed.RECORDED
        dead = await engine.fail(
            Q, "dead", jobs["dead"].token, error(), retry_delay_ms=None, reason="fatal"
        )
        assert dead is Failed.RECORDED
    await ops.cancel(Q, "cx", "ops", "stop")
    for _ in range(2):
        cancelled = await engine.fail(Q, "cx", jobs["cx"].token, error(), retry_delay_ms=0)
        assert cancelled is Failed.CANCELLED
    keys = engine.keys(Q)
    assert [raw.hget(keys.job(i), "st") for i in ("done", "retried", "dead", "cx")] == [
        "completed", "delayed", "dead", "cancelled",
    ]  # fmt: skip
    assert raw.hget(keys.job("retried"), "a") == "1"
    assert len(json.loads(raw.hget(keys.job("dead"), "eh") or "[]")) == 1  # recorded once
    # A token that is not this job's last attempt's is still refused.
    assert await engine.complete(Q, [("done", "999", "1")]) == [False]
    assert await engine.fail(Q, "dead", "999", error(), retry_delay_ms=0) is Failed.REFUSED
