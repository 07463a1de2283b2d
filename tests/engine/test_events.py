"""The events stream (opt-in per queue, ``ev=1``): what each transition records, decoded into
``QueueEvent``, and the stream read as a consumer group (read, acknowledge, take over what a
dead consumer held, lag, and a gap when the stream was trimmed past unread entries)."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.models import QueueEvent

from .helpers import Q, add, claim, claim_one, error, new_job

G = "history"


async def read_all(engine: Engine, consumer: str = "c1") -> list[QueueEvent]:
    await engine.ensure_event_group(Q, G, from_start=True)
    return await engine.read_events([Q], G, consumer, 1000, None)


def by_kind(events: list[QueueEvent], kind: str) -> list[QueueEvent]:
    return [e for e in events if e.kind == kind]


async def test_a_jobs_life_is_told_in_order_with_what_each_step_knows(engine: Engine) -> None:
    await add(engine, new_job("a", name="send", group="shop1", priority=3, max_attempts=2))
    await add(engine, new_job("later", delay_ms=60_000))
    job = await claim_one(engine, worker="w-7")
    await engine.fail(Q, "a", job.token, error("boom", 1), retry_delay_ms=0)
    again = await claim_one(engine, worker="w-8")
    await engine.complete(Q, [("a", again.token, '{"ok": true}')])
    events = [e for e in await read_all(engine) if e.job_id == "a"]
    assert [e.kind for e in events] == ["enqueued", "started", "retrying", "started", "completed"]
    enq, first, retry, second, done = events
    assert (enq.name, enq.group, enq.priority, enq.max_attempts, enq.delay) == (
        "send", "shop1", 3, 2, timedelta(0),
    )  # fmt: skip
    assert (first.attempt, first.worker, second.attempt, second.worker) == (1, "w-7", 2, "w-8")
    assert retry.attempt == 1 and retry.error is not None and retry.error.message == "boom"
    assert retry.delay == timedelta(0)
    assert done.attempt == 2 and done.result == {"ok": True}
    assert done.duration is not None and done.duration >= timedelta(0)
    assert all(a.at <= b.at for a, b in zip(events, events[1:], strict=False))
    assert [e.stream_id for e in events] == sorted(e.stream_id for e in events)


async def test_dead_and_the_other_transitions(engine: Engine, raw: redis.Redis) -> None:
    keys = engine.keys(Q)
    await add(engine, *(new_job(j, max_attempts=1, group="g") for j in "abcdef"))
    jobs = {j.id: j for j in await claim(engine, 6)}
    await engine.fail(
        Q, "a", jobs["a"].token, error("fatal!", 1), retry_delay_ms=None, reason="fatal"
    )
    await engine.reschedule(Q, "b", jobs["b"].token, 500, "429 from the API")
    await engine.reschedule(Q, "c", jobs["c"].token, 0, "slow down", hold_ms=700)
    await engine.defer(Q, "d", jobs["d"].token, 1000, 60_000, error("who?", 0, "UnknownJob"))
    await engine.release(Q, [("e", jobs["e"].token)])
    raw.zadd(keys.active, {"f": 0})  # its lease ran out
    await engine.reap(Q)
    await engine.replay(Q, ["a"], "oncall")
    await engine.cancel(Q, "e", "ops", "no longer needed")
    events = await read_all(engine)
    dead = by_kind(events, "dead")
    assert [(e.job_id, e.reason, e.attempt) for e in dead] == [
        ("a", "fatal", 1),
        ("e", "cancelled", 0),
    ]
    assert dead[0].error is not None and dead[0].error.message == "fatal!"
    (resched,) = by_kind(events, "rescheduled")
    assert (resched.job_id, resched.delay, resched.message) == (
        "b",
        timedelta(milliseconds=500),
        "429 from the API",
    )
    (limited,) = by_kind(events, "rate_limited")
    assert (limited.job_id, limited.group, limited.delay) == ("c", "g", timedelta(milliseconds=700))
    (deferred,) = by_kind(events, "deferred")
    assert deferred.job_id == "d" and deferred.delay == timedelta(seconds=1)
    (released,) = by_kind(events, "released")
    assert (released.job_id, released.attempt) == ("e", 0)
    (stalled,) = by_kind(events, "stalled")
    assert (stalled.job_id, stalled.attempt, stalled.worker) == ("f", 0, "w1")
    (replayed,) = by_kind(events, "replayed")
    assert (replayed.job_id, replayed.by) == ("a", "oncall")


async def test_drain_and_remove_say_which_jobs_went(engine: Engine) -> None:
    await add(engine, new_job("a"), new_job("b", delay_ms=60_000), new_job("c"))
    await engine.remove(Q, "c")
    await engine.drain_step(Q)
    removed = {(e.job_id, e.by) for e in by_kind(await read_all(engine), "removed")}
    assert removed == {("a", "drain"), ("b", "drain"), ("c", "remove")}


async def test_a_group_reads_each_event_once_and_takes_over_a_dead_consumers(
    engine: Engine,
) -> None:
    await add(engine, *(new_job(f"j{i}") for i in range(5)))
    assert await engine.ensure_event_group(Q, G, from_start=True) is True
    assert await engine.ensure_event_group(Q, G, from_start=True) is False
    first = await engine.read_events([Q], G, "c1", 3, None)
    rest = await engine.read_events([Q], G, "c2", 100, None)
    assert [e.job_id for e in first + rest] == [f"j{i}" for i in range(5)]
    assert await engine.read_events([Q], G, "c2", 100, None) == []
    assert await engine.ack_events(Q, G, [e.stream_id for e in rest]) == 2
    lag = await engine.event_lag(Q, G)
    assert lag is not None and (lag.pending, lag.lost) == (3, False)
    await asyncio.sleep(0.05)
    taken = await engine.take_over_events(Q, G, "c3", 20, 100)  # c1 died holding three
    assert [e.job_id for e in taken] == ["j0", "j1", "j2"]
    await engine.ack_events(Q, G, [e.stream_id for e in taken])
    lag = await engine.event_lag(Q, G)
    assert lag is not None and lag.pending == 0
    assert await engine.event_lag(Q, "nobody") is None


async def test_a_stream_trimmed_past_unread_entries_is_a_gap(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.ensure_event_group(Q, G, from_start=True)
    await add(engine, *(new_job(f"j{i}") for i in range(10)))
    read = await engine.read_events([Q], G, "c1", 2, None)
    await engine.ack_events(Q, G, [e.stream_id for e in read])
    lag = await engine.event_lag(Q, G)
    assert lag is not None and not lag.lost
    raw.xtrim(keys.events, maxlen=3, approximate=False)  # past seven entries it never read
    lag = await engine.event_lag(Q, G)
    assert lag is not None and lag.lost
