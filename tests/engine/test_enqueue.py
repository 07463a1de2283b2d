"""enqueue.lua: store new jobs waiting or delayed, all or none; duplicates change nothing."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
import redis

from corral.app import App
from corral.engine import Engine
from corral.engine.keys import QueueKeys, registry_key
from corral.errors import PayloadError, QueueFull
from corral.models import JobOverrides

from .helpers import Q, add, claim, events, new_job, queue_keys, server_ms


async def test_stores_a_waiting_job_with_every_field(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    before = server_ms(raw)
    job = new_job(
        "a",
        name="send",
        payload='{"to": "x"}',
        group="shop1",
        priority=2,
        max_attempts=5,
        overrides=JobOverrides(timeout=timedelta(seconds=3)),
        max_stalls=4,
        max_reschedules=7,
        keep_completed_ms=1000,
        keep_dead_ms=2000,
    )
    assert await add(engine, job) == [True]

    h = raw.hgetall(keys.job("a"))
    assert h["n"] == "send"
    assert "d" not in h  # the payload has its own key: the hash stays compact
    assert raw.get(keys.payload("a")) == '{"to": "x"}'
    assert h["g"] == "shop1"
    assert h["p"] == "2"
    assert h["s"] == "1"
    assert h["ma"] == "5"
    assert json.loads(h["o"]) == {"t": 3000, "b": {"t": "custom"}}
    assert (h["xs"], h["xr"], h["kc"], h["kd"]) == ("4", "7", "1000", "2000")
    assert "a" not in h  # no attempt yet (absent reads as 0)
    assert h["st"] == "waiting"
    assert before <= int(h["ct"]) <= server_ms(raw)

    assert raw.zrange(keys.waiting("shop1"), 0, -1) == ["a"]
    assert raw.zrange(keys.ready, 0, -1) == ["shop1"]
    assert raw.zcard(keys.delayed) == 0
    assert raw.zscore(keys.marker, "m") is not None
    assert events(raw, engine) == [("enqueued", "a")]
    assert Q in raw.smembers(registry_key(engine.prefix))
    counts = await engine.counts(Q)
    assert counts.waiting == 1
    assert counts.delayed == 0


async def test_positive_delay_makes_the_job_delayed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    before = server_ms(raw)
    assert await add(engine, new_job("later", delay_ms=10_000), new_job("now")) == [True, True]

    assert raw.hget(keys.job("later"), "st") == "delayed"
    due = raw.zscore(keys.delayed, "later")
    assert due is not None
    assert before + 10_000 <= due <= server_ms(raw) + 10_000
    assert raw.zrange(keys.waiting(""), 0, -1) == ["now"]
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.delayed) == (1, 1)


@pytest.mark.parametrize("delay", [0, -5])
async def test_zero_or_negative_delay_is_waiting(
    engine: Engine, keys: QueueKeys, raw: redis.Redis, delay: int
) -> None:
    await add(engine, new_job("a", delay_ms=delay))
    assert raw.hget(keys.job("a"), "st") == "waiting"
    assert raw.zcard(keys.delayed) == 0


async def test_duplicate_id_returns_false_and_changes_nothing(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", payload='{"v": 1}'))
    snapshot = raw.hgetall(keys.job("a"))
    seq = raw.hget(keys.meta, "seq")
    n_events = raw.xlen(keys.events)

    assert await add(engine, new_job("a", payload='{"v": 2}', priority=9, delay_ms=5000)) == [False]
    assert raw.hgetall(keys.job("a")) == snapshot
    assert raw.hget(keys.meta, "seq") == seq
    assert raw.xlen(keys.events) == n_events
    assert raw.zcard(keys.delayed) == 0
    assert (await engine.counts(Q)).waiting == 1


async def test_duplicate_of_a_job_in_any_state_is_refused(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = (await engine.claim(Q, 1, "w", 30_000)).jobs[0]
    assert await add(engine, new_job("a")) == [False]
    assert raw.hget(keys.job("a"), "tk") == job.token
    assert raw.hget(keys.job("a"), "st") == "active"


async def test_batch_reports_one_flag_per_job(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("old"))
    flags = await add(engine, new_job("a"), new_job("old"), new_job("b"), new_job("a"))
    assert flags == [True, False, True, False]
    assert sorted(raw.zrange(keys.waiting(""), 0, -1)) == ["a", "b", "old"]
    assert (await engine.counts(Q)).waiting == 3


@pytest.mark.parametrize(
    "bad",
    [
        {"job_id": ""},
        {"name": ""},
        {"priority": "high"},
        {"delay_ms": "soon"},
        {"max_attempts": "many"},
    ],
    ids=["empty-id", "empty-name", "priority", "delay", "attempts"],
)
async def test_a_bad_entry_leaves_nothing_written(
    engine: Engine, raw: redis.Redis, bad: dict[str, object]
) -> None:
    fields = dict(bad)
    job_id = str(fields.pop("job_id", "bad"))
    batch = [new_job("good1"), new_job(job_id, **fields), new_job("good2")]  # type: ignore[arg-type]
    before = {k: raw.dump(k) for k in queue_keys(raw, engine)}  # only the queue's settings
    with pytest.raises(PayloadError):
        await engine.enqueue(Q, batch)
    assert {k: raw.dump(k) for k in queue_keys(raw, engine)} == before


async def test_a_bad_entry_does_not_touch_existing_jobs(engine: Engine, raw: redis.Redis) -> None:
    await add(engine, new_job("a"))
    before = {k: raw.dump(k) for k in queue_keys(raw, engine)}
    with pytest.raises(PayloadError, match="non-numeric"):
        await add(engine, new_job("b"), new_job("c", priority="x"))
    assert {k: raw.dump(k) for k in queue_keys(raw, engine)} == before


async def test_sequence_and_priority_order_the_waiting_set(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("p1-first", priority=1))
    await add(engine, new_job("p0-a"), new_job("p0-b"))
    await add(engine, new_job("neg", priority=-1))
    seqs = [raw.hget(keys.job(i), "s") for i in ("p1-first", "p0-a", "p0-b", "neg")]
    assert seqs == ["1", "2", "3", "4"]
    assert raw.zrange(keys.waiting(""), 0, -1) == ["neg", "p0-a", "p0-b", "p1-first"]


async def test_groups_get_their_own_waiting_sets(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("b1", group="b"), new_job("a2", group="a"))
    assert raw.zrange(keys.waiting("a"), 0, -1) == ["a1", "a2"]
    assert raw.zrange(keys.waiting("b"), 0, -1) == ["b1"]
    assert sorted(raw.zrange(keys.ready, 0, -1)) == ["a", "b"]
    assert (await engine.counts(Q)).waiting == 3


async def test_payload_is_stored_verbatim(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    payload = json.dumps({"text": "héllo ✓", "nested": [1, {"k": None}], "big": "x" * 10_000})
    await add(engine, new_job("a", payload=payload))
    assert raw.get(keys.payload("a")) == payload


async def test_empty_batch_writes_nothing(engine: Engine, raw: redis.Redis) -> None:
    settings = [engine.keys(Q).meta]  # the fixture turned the events stream on
    assert await engine.enqueue(Q, []) == []
    assert queue_keys(raw, engine) == settings


async def test_events_are_recorded_only_when_the_queue_asks(app: App, raw: redis.Redis) -> None:
    engine = await app.engine()
    await engine.enqueue("quiet", [new_job("a")])
    assert raw.exists(engine.keys("quiet").events) == 0
    await engine.configure("quiet", ev=1)
    await engine.enqueue("quiet", [new_job("b")])
    assert events(raw, engine, "quiet") == [("enqueued", "b")]


# -- the queue's cap (max_jobs) ----------------------------------------------------------------


async def test_a_capped_queue_refuses_a_whole_batch_that_would_exceed_it(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.set_max_jobs(Q, 5)
    assert await add(engine, new_job("w1"), new_job("w2"), new_job("d1", delay_ms=60_000)) == [
        True,
        True,
        True,
    ]
    before = {k: raw.dump(k) for k in queue_keys(raw, engine)}
    with pytest.raises(QueueFull) as full:
        await add(engine, new_job("n1"), new_job("n2"), new_job("n3"))
    assert (full.value.queue, full.value.max_jobs, full.value.count, full.value.refused) == (
        Q,
        5,
        3,
        3,
    )
    assert str(full.value) == (
        "queue 'q' is full: 3 jobs waiting or delayed, its cap is 5 (3 new job(s) refused)"
    )
    assert {k: raw.dump(k) for k in queue_keys(raw, engine)} == before  # nothing written
    assert await add(engine, new_job("n1"), new_job("n2")) == [True, True]  # up to the cap
    with pytest.raises(QueueFull):
        await add(engine, new_job("n3", delay_ms=1000))  # delayed jobs count as well


async def test_only_new_ids_count_against_the_cap(engine: Engine, raw: redis.Redis) -> None:
    await engine.set_max_jobs(Q, 2)
    await add(engine, new_job("a"), new_job("b"))
    assert await add(engine, new_job("a")) == [False]  # at the cap, but stores nothing
    assert await add(engine, new_job("a"), new_job("b"), new_job("a")) == [False, False, False]
    with pytest.raises(QueueFull) as full:
        await add(engine, new_job("a"), new_job("c"), new_job("c"))
    assert full.value.refused == 1  # "c" once; "a" exists


async def test_running_jobs_do_not_count_and_the_cap_can_be_removed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.set_max_jobs(Q, 1)
    await add(engine, new_job("a"))
    assert raw.hget(keys.meta, "max_jobs") == "1"
    await claim(engine)  # active now: the queue has room again
    assert await add(engine, new_job("b")) == [True]
    with pytest.raises(QueueFull):
        await add(engine, new_job("c"))
    assert await engine.max_jobs(Q) == 1
    await engine.set_max_jobs(Q, None)
    assert not raw.hexists(keys.meta, "max_jobs")  # unset: enqueue does not count at all
    assert await engine.max_jobs(Q) is None
    assert await add(engine, new_job("c")) == [True]


async def test_concurrent_callers_of_a_full_queue_are_refused_alone(engine: Engine) -> None:
    """Enqueues of one tick share a script call; when it is refused each caller is tried
    alone, so the callers that fit are stored and only the others get QueueFull."""
    await engine.set_max_jobs(Q, 3)
    await add(engine, new_job("first"))
    calls = [add(engine, new_job(f"c{i}")) for i in range(4)]
    results = await asyncio.gather(*calls, return_exceptions=True)
    stored = [r for r in results if r == [True]]
    refused = [r for r in results if isinstance(r, QueueFull)]
    assert (len(stored), len(refused)) == (2, 2), results
    assert (await engine.counts(Q)).waiting == 3
