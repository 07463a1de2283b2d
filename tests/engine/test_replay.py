"""replay.lua: dead or cancelled jobs go back to waiting with fresh attempts and an audit trail."""

from __future__ import annotations

import asyncio
import json

import pytest
import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, claim_one, error, events, new_job, server_ms


async def _kill(engine: Engine, job_id: str, reason: str = "failed", message: str = "boom") -> None:
    """Claim the next job (it must be job_id) and fail it for good."""
    job = await claim_one(engine)
    assert job.id == job_id
    err = error(message, attempt=job.attempt)
    assert await engine.fail(Q, job.id, job.token, err, retry_delay_ms=None, reason=reason)


async def test_replay_dead_job_resets_counters_and_keeps_errors(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g", max_attempts=2, max_stalls=3))
    # a stall, a reschedule and two failed attempts before it dies
    await claim_one(engine, lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)
    job = await claim_one(engine)
    assert await engine.reschedule(Q, "a", job.token, 0, "later") == 1
    job = await claim_one(engine)
    await engine.fail(Q, "a", job.token, error("first", 1), retry_delay_ms=0)
    job = await claim_one(engine)
    await engine.fail(Q, "a", job.token, error("second", 2), retry_delay_ms=None, reason="failed")
    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["a"], h["sl"], h["rs"]) == ("dead", "2", "1", "1")
    history = h["eh"]

    raw.delete(keys.marker)
    before = server_ms(raw)
    assert await ops.replay(Q, ["a"], "alice") == 1

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "waiting"
    assert (h["a"], h["sl"], h["rs"]) == ("0", "0", "0")
    assert "dr" not in h
    assert "fa" not in h
    assert h["eh"] == history  # the errors stay with the job
    assert [e["message"] for e in json.loads(h["eh"])] == ["first", "second"]
    (record,) = json.loads(h["rp"])
    assert record["by"] == "alice"
    assert record["reason"] == "failed"
    assert record["edited"] is False
    assert before <= record["at"] <= server_ms(raw)
    assert raw.zcard(keys.dead) == 0
    assert raw.zscore(keys.ready, "g") is not None
    assert raw.sismember(keys.base + "groups", "g") == 1
    assert raw.zscore(keys.marker, "m") is not None
    assert events(raw, engine)[-1] == ("replayed", "a")
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.dead) == (1, 0)

    again = await claim_one(engine)
    assert (again.id, again.attempt, again.max_attempts, again.reschedules) == ("a", 1, 2, 0)


async def test_replay_with_an_edited_payload(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", payload='{"x": "bad"}'))
    await _kill(engine, "a")
    assert await ops.replay(Q, ["a"], "bob", payload='{"x": "good"}') == 1
    assert raw.get(keys.payload("a")) == '{"x": "good"}'
    (record,) = json.loads(raw.hget(keys.job("a"), "rp") or "")
    assert (record["by"], record["edited"]) == ("bob", True)
    assert (await claim_one(engine)).payload == '{"x": "good"}'


async def test_edited_payload_needs_exactly_one_id(engine: Engine, ops: Engine) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        await ops.replay(Q, ["a", "b"], "bob", payload="{}")


async def test_replay_skips_jobs_that_are_not_dead(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("dead"), new_job("active"), new_job("done"), new_job("waiting"))
    await _kill(engine, "dead")
    _active, done = await claim(engine, 2)
    await engine.complete(Q, [(done.id, done.token, "1")])
    snapshot = {i: raw.hgetall(keys.job(i)) for i in ("active", "done", "waiting")}

    ids = ["waiting", "active", "done", "missing", "dead"]
    assert await ops.replay(Q, ids, "op") == 1
    assert {i: raw.hgetall(keys.job(i)) for i in ("active", "done", "waiting")} == snapshot
    assert raw.exists(keys.job("missing")) == 0
    assert raw.hget(keys.job("dead"), "st") == "waiting"
    assert await ops.replay(Q, ["dead"], "op") == 0  # already replayed


async def test_replay_several_jobs(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"j{i}") for i in range(3)))
    for i in range(3):
        await _kill(engine, f"j{i}")
    assert await ops.replay(Q, ["j0", "j1", "j2"], "op") == 3
    assert raw.zcard(keys.dead) == 0
    assert [j.id for j in await claim(engine, 5)] == ["j0", "j1", "j2"]  # FIFO place is kept


async def test_replay_cancelled_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    assert await ops.cancel(Q, "a", "op", "oops") == 1
    assert await ops.replay(Q, ["a"], "op") == 1
    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "waiting"
    assert "cx" not in h  # the cancellation does not follow the job into its next run
    assert json.loads(h["rp"])[0]["reason"] == "cancelled"
    assert [e["type"] for e in json.loads(h["eh"])] == ["Cancelled"]
    job = await claim_one(engine)
    assert await engine.heartbeat(Q, 30_000, [(job.id, job.token)]) == ([], [])


async def test_replay_history_accumulates_and_is_bounded(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    for i in range(22):
        await _kill(engine, "a", reason=f"r{i}")
        assert await ops.replay(Q, ["a"], f"who{i}") == 1
    hist = json.loads(raw.hget(keys.job("a"), "rp") or "")
    assert len(hist) == 20
    assert [r["by"] for r in hist] == [f"who{i}" for i in range(2, 22)]
    assert hist[-1]["reason"] == "r21"


async def test_replay_result_of_a_previous_run_is_dropped(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    await _kill(engine, "a")
    raw.hset(keys.job("a"), "r", "stale")
    assert await ops.replay(Q, ["a"], "op") == 1
    assert raw.hexists(keys.job("a"), "r") is False


async def test_a_replayed_job_names_no_worker_until_one_takes_it(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_attempts=1))
    await _kill(engine, "a")
    assert raw.hget(keys.job("a"), "wk") == "w1"  # the dead job keeps who ran it
    assert await ops.replay(Q, ["a"], "ops") == 1
    assert raw.hexists(keys.job("a"), "wk") is False
    job = await claim_one(engine, worker="w2")
    assert raw.hget(keys.job(job.id), "wk") == "w2"


async def test_replay_of_nothing(engine: Engine, ops: Engine, raw: redis.Redis) -> None:
    assert await ops.replay(Q, [], "op") == 0
