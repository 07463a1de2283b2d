"""claim.lua: promote due delayed jobs, then lease waiting jobs (priority, FIFO, groups in turn)."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.models import JobOverrides
from corral.retry import Fixed

from .helpers import Q, add, claim, claim_one, error, events, new_job, server_ms


async def test_empty_queue_claims_nothing(engine: Engine) -> None:
    result = await engine.claim(Q, 5, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms is None
    assert result.paused is False


async def test_claim_hands_out_the_job_and_leases_it(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(
        engine,
        new_job(
            "a",
            name="send",
            payload='{"v": 1}',
            group="g",
            max_attempts=4,
            overrides=JobOverrides(timeout=timedelta(seconds=1), backoff=Fixed()),
        ),
    )
    before = server_ms(raw)
    job = await claim_one(engine, worker="worker-7", lease_ms=5_000)

    assert (job.id, job.name, job.payload) == ("a", "send", '{"v": 1}')
    assert (job.attempt, job.max_attempts) == (1, 4)
    assert job.overrides == JobOverrides(timeout=timedelta(seconds=1), backoff=Fixed())
    assert job.group == "g"
    assert job.token

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "active"
    assert h["tk"] == job.token
    assert h["wk"] == "worker-7"
    assert h["a"] == "1"
    assert before <= int(h["sa"]) <= server_ms(raw)
    deadline = raw.zscore(keys.active, "a")
    assert deadline is not None
    assert before + 5_000 <= deadline <= server_ms(raw) + 5_000
    assert raw.hget(keys.gactive, "g") == "1"
    assert raw.exists(keys.waiting("g")) == 0
    assert raw.zcard(keys.ready) == 0
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active) == (0, 1)


async def test_lower_priority_first_then_fifo(engine: Engine) -> None:
    await add(
        engine,
        new_job("p5-a", priority=5),
        new_job("p0-a", priority=0),
        new_job("p5-b", priority=5),
        new_job("p0-b", priority=0),
        new_job("p1-a", priority=1),
        new_job("neg", priority=-3),
    )
    got = [j.id for j in await claim(engine, 10)]
    assert got == ["neg", "p0-a", "p0-b", "p1-a", "p5-a", "p5-b"]


async def test_fifo_holds_across_many_claims(engine: Engine) -> None:
    ids = [f"j{i:03d}" for i in range(30)]
    await add(engine, *(new_job(i) for i in ids))
    got: list[str] = []
    while len(got) < len(ids):
        batch = await claim(engine, 4)
        assert batch
        got.extend(j.id for j in batch)
    assert got == ids


async def test_groups_are_served_round_robin(engine: Engine) -> None:
    await add(
        engine,
        new_job("a1", group="a"),
        new_job("a2", group="a"),
        new_job("a3", group="a"),
        new_job("a4", group="a"),
        new_job("b1", group="b"),
        new_job("b2", group="b"),
        new_job("c1", group="c"),
    )
    got = [j.id for j in await claim(engine, 7)]
    assert got == ["a1", "b1", "c1", "a2", "b2", "a3", "a4"]


async def test_round_robin_spans_separate_claims(engine: Engine) -> None:
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(5)))
    await add(engine, new_job("b0", group="b"), new_job("b1", group="b"))
    got = [(await claim_one(engine)).group for _ in range(6)]
    # a backlog in group a never starves b: the groups alternate while both have work
    assert got[:4] == ["a", "b", "a", "b"]
    assert got[4:] == ["a", "a"]


async def test_a_group_that_arrives_later_is_served_next(engine: Engine) -> None:
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(4)))
    assert (await claim_one(engine)).id == "a0"
    await add(engine, new_job("z0", group="z"))
    got = [j.id for j in await claim(engine, 2)]
    # z joins at the current virtual time, ahead of a (already served once): not behind a's backlog
    assert got == ["z0", "a1"]
    assert (await claim_one(engine)).id == "a2"


async def test_priority_applies_within_a_group(engine: Engine) -> None:
    await add(
        engine,
        new_job("a-low", group="a", priority=9),
        new_job("a-high", group="a", priority=0),
        new_job("b-low", group="b", priority=9),
    )
    got = [j.id for j in await claim(engine, 3)]
    assert got == ["a-high", "b-low", "a-low"]


async def test_claims_several_at_once_up_to_the_limit(engine: Engine, raw: redis.Redis) -> None:
    await add(engine, *(new_job(f"j{i}") for i in range(5)))
    assert len(await claim(engine, 3)) == 3
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active) == (2, 3)
    assert len(await claim(engine, 10)) == 2
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active) == (0, 5)
    assert await claim(engine, 10) == []


async def test_fencing_tokens_are_distinct(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"j{i}") for i in range(6)))
    first = await claim(engine, 3, worker="w1")
    second = await claim(engine, 3, worker="w2")
    # one token per claim call: (job, token) names one attempt
    assert len({j.token for j in first}) == len({j.token for j in second}) == 1
    assert int(second[0].token) > int(first[0].token)
    for job in first + second:
        assert raw.hget(keys.job(job.id), "tk") == job.token
    assert {raw.hget(keys.job(j.id), "wk") for j in second} == {"w2"}


async def test_a_second_lease_of_the_same_job_gets_a_new_token(engine: Engine) -> None:
    await add(engine, new_job("a"))
    first = await claim_one(engine)
    assert await engine.release(Q, [(first.id, first.token)]) == 1
    second = await claim_one(engine)
    assert second.id == "a"
    assert second.token != first.token


async def test_due_delayed_jobs_are_promoted_and_claimed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("soon", delay_ms=150), new_job("far", delay_ms=60_000))
    result = await engine.claim(Q, 5, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms is not None
    assert 0 <= result.next_due_ms <= 150

    await asyncio.sleep(0.2)
    result = await engine.claim(Q, 5, "w1", 30_000)
    assert [j.id for j in result.jobs] == ["soon"]
    assert result.jobs[0].attempt == 1
    assert raw.zrange(keys.delayed, 0, -1) == ["far"]
    assert result.next_due_ms is not None
    assert 59_000 < result.next_due_ms <= 60_000
    assert raw.hget(keys.job("soon"), "st") == "active"


async def test_promotion_keeps_priority_order(engine: Engine) -> None:
    await add(engine, new_job("late-urgent", delay_ms=30, priority=0))
    await add(engine, new_job("waiting-low", priority=5))
    await asyncio.sleep(0.05)
    got = [j.id for j in await claim(engine, 2)]
    assert got == ["late-urgent", "waiting-low"]


async def test_promote_limit_bounds_the_work_per_call(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"d{i}", delay_ms=20) for i in range(5)))
    await asyncio.sleep(0.05)
    result = await engine.claim(Q, 0, "w1", 30_000, promote=2)
    assert result.jobs == []
    assert raw.zcard(keys.delayed) == 3
    assert (await engine.counts(Q)).waiting == 2
    assert result.next_due_ms == 0  # more are already due


async def test_paused_queue_claims_nothing_but_says_so(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"))
    await engine.set_paused(Q, True)
    result = await engine.claim(Q, 5, "w1", 30_000)
    assert result.paused is True
    assert result.jobs == []
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.paused) == (2, 0, 1)
    assert raw.hget(keys.job("a"), "st") == "waiting"

    await engine.set_paused(Q, False)
    result = await engine.claim(Q, 5, "w1", 30_000)
    assert result.paused is False
    assert [j.id for j in result.jobs] == ["a", "b"]


async def test_paused_queue_still_promotes_due_jobs(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("d", delay_ms=20))
    await engine.set_paused(Q, True)
    await asyncio.sleep(0.04)
    result = await engine.claim(Q, 5, "w1", 30_000)
    assert result.paused is True
    assert result.jobs == []
    assert raw.hget(keys.job("d"), "st") == "waiting"
    assert (await engine.counts(Q)).waiting == 1


async def test_malformed_job_hash_goes_to_dead(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    # written by hand: no name, payload or attempt fields
    raw.hset(keys.job("bad"), mapping={"g": "", "st": "waiting", "p": "0", "s": "1"})
    raw.zadd(keys.waiting(""), {"bad": 1})
    raw.zadd(keys.ready, {"": 0})
    raw.hincrby(keys.meta, "waiting", 1)
    await add(engine, new_job("good"))

    got = await claim(engine, 5)
    assert [j.id for j in got] == ["good"]

    h = raw.hgetall(keys.job("bad"))
    assert h["st"] == "dead"
    assert h["dr"] == "malformed"
    assert json.loads(h["le"])["type"] == "MalformedJob"
    assert raw.zscore(keys.dead, "bad") is not None
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.active, counts.dead) == (0, 1, 1)
    assert ("dead", "bad") in events(raw, engine)


async def test_job_with_a_non_numeric_attempt_is_malformed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    raw.hset(keys.job("a"), "a", "oops")
    assert await claim(engine, 1) == []
    assert raw.hget(keys.job("a"), "dr") == "malformed"
    assert (await engine.counts(Q)).dead == 1


async def test_waiting_entry_without_a_hash_is_dropped(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("gone"), new_job("ok"))
    raw.delete(keys.job("gone"))
    got = await claim(engine, 5)
    assert [j.id for j in got] == ["ok"]
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.dead) == (0, 0)
    assert raw.exists(keys.job("gone")) == 0


async def test_a_waiting_entry_without_a_hash_frees_its_id(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("gone"))
    raw.delete(keys.job("gone"))  # its payload key is left
    assert await claim(engine, 5) == []
    assert raw.exists(keys.payload("gone")) == 0
    assert await add(engine, new_job("gone")) == [True]  # the id can be used again
    assert [j.id for j in await claim(engine, 5)] == ["gone"]


async def test_a_job_dead_for_a_lost_payload_keeps_its_id(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("x"))
    raw.delete(keys.payload("x"))
    assert await claim(engine, 5) == []
    assert raw.hget(keys.job("x"), "dr") == "malformed"
    # the dead job holds its id: enqueueing it again stores nothing over the dead one
    assert await add(engine, new_job("x")) == [False]
    assert raw.hget(keys.job("x"), "st") == "dead"
    assert raw.zcard(keys.waiting("")) == 0
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.dead) == (0, 1)


async def test_a_delayed_entry_without_a_hash_frees_its_id(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("later", delay_ms=1))
    raw.delete(keys.job("later"))
    await asyncio.sleep(0.01)
    assert await claim(engine, 5) == []
    assert raw.zcard(keys.delayed) == 0
    assert raw.exists(keys.payload("later")) == 0


async def test_claiming_zero_only_promotes(engine: Engine) -> None:
    await add(engine, new_job("a"))
    result = await engine.claim(Q, 0, "w1", 30_000)
    assert result.jobs == []
    assert (await engine.counts(Q)).waiting == 1


async def test_queues_are_isolated(engine: Engine) -> None:
    await add(engine, new_job("a"), queue="other")
    assert await claim(engine, 5) == []
    assert [j.id for j in await claim(engine, 5, queue="other")] == ["a"]


# -- group limits ----------------------------------------------------------------------------


async def test_group_at_its_concurrency_limit_is_skipped_until_a_job_ends(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, gconc=1)
    await add(
        engine,
        new_job("a1", group="a"),
        new_job("a2", group="a"),
        new_job("b1", group="b"),
        new_job("b2", group="b"),
        new_job("u1"),
        new_job("u2"),
    )
    first = {j.id: j for j in await claim(engine, 10)}
    # one job per group; the default group has no limit
    assert sorted(first) == ["a1", "b1", "u1", "u2"]
    assert raw.zscore(keys.ready, "a") is None
    assert raw.zscore(keys.ready, "b") is None
    assert await claim(engine, 10) == []

    raw.delete(keys.marker)
    a1 = first["a1"]
    assert await engine.complete(Q, [(a1.id, a1.token, "1")]) == [True]
    assert raw.zscore(keys.ready, "a") is not None
    assert raw.zscore(keys.marker, "m") is not None  # the freed slot wakes a worker
    assert [j.id for j in await claim(engine, 10)] == ["a2"]


async def test_own_group_concurrency_overrides_the_queue_default(engine: Engine) -> None:
    await engine.configure(Q, gconc=1)
    await engine.group_action(Q, "limits", "big", concurrency="3")
    await add(engine, *(new_job(f"big{i}", group="big") for i in range(5)))
    await add(engine, *(new_job(f"small{i}", group="small") for i in range(5)))
    got = [j.group for j in await claim(engine, 10)]
    assert sorted(got) == ["big", "big", "big", "small"]


async def test_concurrency_slot_comes_back_after_fail_release_and_reap(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, gconc=1)
    await add(engine, *(new_job(f"a{i}", group="a", max_stalls=5) for i in range(4)))
    job = await claim_one(engine)
    assert await claim(engine, 5) == []
    await engine.fail(Q, job.id, job.token, error(kind="E"), retry_delay_ms=60_000)
    job = await claim_one(engine)
    assert await claim(engine, 5) == []
    await engine.release(Q, [(job.id, job.token)])
    job = await claim_one(engine, lease_ms=50)
    assert await claim(engine, 5) == []
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)
    assert len(await claim(engine, 5)) == 1
    assert raw.hget(keys.gactive, "a") == "1"


async def test_group_over_its_rate_limit_is_held_and_next_due_says_when(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, grate_n=2, grate_w=200)
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(3)), new_job("b1", group="b"))
    before = server_ms(raw)
    result = await engine.claim(Q, 10, "w1", 30_000)
    # two starts of a per window, b is not held back by a's limit
    assert sorted(j.id for j in result.jobs) == ["a0", "a1", "b1"]
    until = raw.zscore(keys.base + "limited", "a")
    assert until is not None
    assert before + 200 <= until <= server_ms(raw) + 200
    assert raw.zscore(keys.ready, "a") is None
    assert result.next_due_ms is not None
    assert 150 <= result.next_due_ms <= 200
    state = (await engine.group_states(Q, ["a"]))[0]
    assert state.limited_until is not None
    assert round(state.limited_until.timestamp() * 1000) == int(until)
    assert state.waiting == 1

    # completing does not lift a rate limit: starts count, not running jobs
    await engine.complete(Q, [(j.id, j.token, "1") for j in result.jobs])
    result = await engine.claim(Q, 10, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms is not None
    assert 0 < result.next_due_ms <= 200

    await asyncio.sleep(result.next_due_ms / 1000 + 0.02)
    result = await engine.claim(Q, 10, "w1", 30_000)
    assert [j.id for j in result.jobs] == ["a2"]
    assert raw.zscore(keys.base + "limited", "a") is None


async def test_own_group_rate_overrides_the_queue_default(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, grate_n=1, grate_w=60_000)
    await engine.group_action(Q, "limits", "fast", rate="3:60000")
    await add(engine, *(new_job(f"f{i}", group="fast") for i in range(5)))
    await add(engine, *(new_job(f"s{i}", group="slow") for i in range(5)))
    got = [j.group for j in await claim(engine, 10)]
    assert sorted(got) == ["fast", "fast", "fast", "slow"]
    assert sorted(raw.zrange(keys.base + "limited", 0, -1)) == ["fast", "slow"]


async def test_queue_wide_rate_limit_caps_a_claim_and_returns_the_wait(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, rate_n=3, rate_w=60_000)
    await add(engine, *(new_job(f"j{i}") for i in range(3)), new_job("g1", group="g"))
    await add(engine, new_job("j3"))
    result = await engine.claim(Q, 10, "w1", 30_000)
    assert len(result.jobs) == 3
    assert result.next_due_ms is not None
    assert 59_000 <= result.next_due_ms <= 60_000
    result = await engine.claim(Q, 10, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms is not None
    assert 59_000 <= result.next_due_ms <= 60_000
    assert (await engine.counts(Q)).waiting == 2


async def test_queue_wide_rate_window_slides(engine: Engine) -> None:
    await engine.configure(Q, rate_n=2, rate_w=150)
    await add(engine, *(new_job(f"j{i}") for i in range(5)))
    first = await engine.claim(Q, 10, "w1", 30_000)
    assert [j.id for j in first.jobs] == ["j0", "j1"]
    assert first.next_due_ms is not None
    await asyncio.sleep(first.next_due_ms / 1000 + 0.02)
    second = await engine.claim(Q, 10, "w1", 30_000)
    assert [j.id for j in second.jobs] == ["j2", "j3"]


async def test_weights_give_proportional_turns(engine: Engine) -> None:
    await engine.group_action(Q, "limits", "heavy", weight="3")
    await add(engine, *(new_job(f"h{i}", group="heavy") for i in range(40)))
    await add(engine, *(new_job(f"l{i}", group="light") for i in range(40)))
    got = [j.group for j in await claim(engine, 40)]
    assert (got.count("heavy"), got.count("light")) == (30, 10)
    # and the turns are spread, not bunched: every window of 4 holds a light job
    assert all("light" in got[i : i + 4] for i in range(0, 40, 4))


async def test_fractional_weight_gives_fewer_turns(engine: Engine) -> None:
    await engine.group_action(Q, "limits", "bg", weight="0.5")
    await add(engine, *(new_job(f"b{i}", group="bg") for i in range(20)))
    await add(engine, *(new_job(f"n{i}", group="normal") for i in range(20)))
    got = [j.group for j in await claim(engine, 15)]
    assert (got.count("normal"), got.count("bg")) == (10, 5)


async def test_weights_hold_across_separate_claims(engine: Engine) -> None:
    await engine.group_action(Q, "limits", "a", weight="2")
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(20)))
    await add(engine, *(new_job(f"b{i}", group="b") for i in range(20)))
    got = [(await claim_one(engine)).group for _ in range(12)]
    assert (got.count("a"), got.count("b")) == (8, 4)


async def test_paused_group_is_skipped_by_claim(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("b1", group="b"))
    await engine.group_action(Q, "pause", "a")
    result = await engine.claim(Q, 10, "w1", 30_000)
    assert [j.id for j in result.jobs] == ["b1"]
    assert result.paused is False  # only the queue-wide pause is reported
    assert result.next_due_ms is None
    assert await engine.group_action(Q, "resume", "a") is True
    assert [j.id for j in await claim(engine, 10)] == ["a1"]


async def test_claim_that_runs_out_of_turns_says_to_come_back_at_once(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    # 25 rate-limited groups ahead of a ready one: a claim of one gives up after a bounded number
    # of skips, but must not tell the worker to sleep until the limits lift
    groups = [f"g{i:02d}" for i in range(25)]
    for g in groups:
        await engine.group_action(Q, "limits", g, rate="1:60000")
    await add(engine, *(new_job(f"{g}-{i}", group=g) for g in groups for i in range(2)))
    await add(engine, *(new_job(f"z{i}", group="z") for i in range(2)))
    assert len(await claim(engine, 26)) == 26
    result = await engine.claim(Q, 1, "w1", 30_000)
    assert result.jobs == []
    assert result.next_due_ms == 0
    assert [j.id for j in await claim(engine, 1)] == ["z1"]
