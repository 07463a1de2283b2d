"""cancel.lua: end a job from any process; a running job is flagged and its worker told."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from typing import cast

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim, claim_one, error, events, new_job, server_ms


async def test_cancel_waiting_job_ends_it_as_cancelled(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    before = server_ms(raw)
    assert await ops.cancel(Q, "a", "alice", "not needed") == 1

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "cancelled"
    assert h["dr"] == "cancelled"
    assert before <= int(h["fa"]) <= server_ms(raw)
    info = json.loads(h["cx"])
    assert (info["by"], info["reason"]) == ("alice", "not needed")
    assert before <= info["at"] <= server_ms(raw)
    err = json.loads(h["le"])
    assert err["type"] == "Cancelled"
    assert err["attempt"] == 0
    assert "alice" in err["message"]
    assert "not needed" in err["message"]
    assert [e["type"] for e in json.loads(h["eh"])] == ["Cancelled"]
    assert raw.zscore(keys.dead, "a") is not None
    assert raw.zrange(keys.waiting(""), 0, -1) == ["b"]
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.dead) == (1, 1)
    assert ("dead", "a") in events(raw, engine)

    assert [j.id for j in await claim(engine, 5)] == ["b"]


async def test_cancel_delayed_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", delay_ms=60_000))
    assert await ops.cancel(Q, "a", "bob", "") == 1
    assert raw.hget(keys.job("a"), "st") == "cancelled"
    assert raw.zcard(keys.delayed) == 0
    assert raw.zscore(keys.dead, "a") is not None
    result = await engine.claim(Q, 1, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms is None


async def test_cancel_last_waiting_job_of_a_group_forgets_the_group(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"), new_job("b", group="h"))
    assert raw.zscore(keys.ready, "g") is not None
    assert await ops.cancel(Q, "a", "op", "") == 1
    assert raw.zscore(keys.ready, "g") is None
    assert raw.sismember(keys.base + "groups", "g") == 0
    assert raw.exists(keys.waiting("g")) == 0
    assert [j.id for j in await claim(engine, 5)] == ["b"]


async def test_cancel_keeps_the_group_while_it_has_running_jobs(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"), new_job("b", group="g"))
    await claim_one(engine)
    assert await ops.cancel(Q, "b", "op", "") == 1
    assert raw.sismember(keys.base + "groups", "g") == 1
    assert raw.zscore(keys.ready, "g") is None


async def test_cancel_active_job_signals_its_worker(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    pubsub = raw.pubsub()  # type: ignore[no-untyped-call]
    pubsub.subscribe(keys.base + "cancel")
    first = pubsub.get_message(timeout=1.0)
    assert first is not None
    assert first["type"] == "subscribe"
    try:
        assert await ops.cancel(Q, "a", "carol", "wrong input") == 2
        msg = pubsub.get_message(timeout=1.0)
        assert msg is not None
        assert (msg["type"], msg["data"]) == ("message", "a")
    finally:
        pubsub.close()

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "active"  # still running: the worker decides when it stops
    assert h["tk"] == job.token
    assert json.loads(h["cx"])["by"] == "carol"
    assert "dr" not in h
    assert raw.zscore(keys.active, "a") is not None
    assert events(raw, engine)[-1] == ("cancel_requested", "a")
    # asking again signals again (idempotent, no state change)
    assert await ops.cancel(Q, "a", "carol", "again") == 2
    assert raw.hget(keys.job("a"), "st") == "active"


async def test_cancel_signals_reach_a_listener(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("a"))
    await claim_one(engine)
    signals = cast(AsyncGenerator[tuple[str, str], None], ops.cancel_signals([Q, "other"]))
    first = asyncio.ensure_future(anext(signals))
    try:
        # the listener subscribes in the background: ask until it hears (asking again is harmless)
        for _ in range(50):
            assert await ops.cancel(Q, "a", "op", "") == 2
            done, _ = await asyncio.wait({first}, timeout=0.02)
            if done:
                break
        assert first.result() == (Q, "a")
    finally:
        first.cancel()
        await signals.aclose()


async def test_heartbeat_repeats_the_cancel_flag(engine: Engine, ops: Engine) -> None:
    await add(engine, new_job("a"), new_job("b"))
    a, b = await claim(engine, 2)
    items = [(a.id, a.token), (b.id, b.token)]
    assert await engine.heartbeat(Q, 30_000, items) == ([], [])
    assert await ops.cancel(Q, "a", "op", "") == 2
    assert await engine.heartbeat(Q, 30_000, items) == ([], ["a"])
    # a stale token does not learn about the flag: it is told the lease is lost instead
    assert await engine.heartbeat(Q, 30_000, [("a", "stale")]) == (["a"], [])


async def test_worker_can_still_finish_a_job_whose_cancel_was_asked(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await ops.cancel(Q, "a", "op", "") == 2
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]
    assert raw.hget(keys.job("a"), "st") == "completed"
    assert await ops.cancel(Q, "a", "op", "") == 0


async def test_reaper_honours_the_cancel_of_a_gone_worker(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g", max_stalls=5), new_job("b", group="g"))
    await claim_one(engine, worker="gone", lease_ms=50)
    assert await ops.cancel(Q, "a", "op", "stop it") == 2
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (0, 1)  # not requeued although stalls remain

    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["dr"]) == ("cancelled", "cancelled")
    err = json.loads(h["le"])
    assert err["type"] == "Cancelled"
    assert err["worker"] == "gone"
    assert "tk" not in h
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    assert [j.id for j in await claim(engine, 5)] == ["b"]


async def test_cancel_ended_jobs_returns_zero(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("done"), new_job("failed"), new_job("cx"))
    done, failed = await claim(engine, 2)
    await engine.complete(Q, [(done.id, done.token, "1")])
    await engine.fail(Q, failed.id, failed.token, error(kind="E"), retry_delay_ms=None, reason="x")
    assert await ops.cancel(Q, "cx", "op", "") == 1

    snapshot = {i: raw.hgetall(keys.job(i)) for i in ("done", "failed", "cx")}
    for job_id in ("done", "failed", "cx"):
        assert await ops.cancel(Q, job_id, "op", "") == 0
    assert {i: raw.hgetall(keys.job(i)) for i in ("done", "failed", "cx")} == snapshot


async def test_cancel_missing_job(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    assert await ops.cancel(Q, "nope", "op", "") == -1
    assert raw.exists(keys.job("nope")) == 0


async def test_cancel_wakes_callers_waiting_for_the_result(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    assert await engine.watch(Q, "a") == "waiting"
    assert await ops.cancel(Q, "a", "op", "") == 1
    assert await engine.wait_done(Q, "a", 0.2) is True
    assert await engine.watch(Q, "a") == "cancelled"
    assert raw.hexists(keys.job("a"), "wt") is False


async def test_cancelled_job_uses_its_own_dead_retention(
    engine: Engine, ops: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", keep_dead_ms=5_000))
    before = server_ms(raw)
    assert await ops.cancel(Q, "a", "op", "") == 1
    expires = raw.zscore(keys.dead, "a")
    assert expires is not None
    assert before + 5_000 <= expires <= server_ms(raw) + 5_000
