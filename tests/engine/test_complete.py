"""complete.lua: fenced acknowledgement of finished jobs, then bounded retention."""

from __future__ import annotations

import asyncio

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import DAY_MS, Q, add, claim, claim_one, events, new_job, server_ms


async def test_complete_records_the_result(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"))
    job = await claim_one(engine, worker="w-9")
    before = server_ms(raw)
    assert await engine.complete(Q, [(job.id, job.token, '{"ok": true}')]) == [True]

    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "completed"
    assert h["r"] == '{"ok": true}'
    assert before <= int(h["fa"]) <= server_ms(raw)
    assert h["tk"] == "~" + job.token  # spent: no token matches any more
    assert h["wk"] == "w-9"  # who ran it stays on record
    assert raw.zcard(keys.active) == 0
    assert raw.hexists(keys.gactive, "g") is False
    expires = raw.zscore(keys.completed, "a")
    assert expires is not None
    assert before + DAY_MS <= expires <= server_ms(raw) + DAY_MS  # default: kept one day
    counts = await engine.counts(Q)
    assert (counts.active, counts.completed) == (0, 1)
    assert events(raw, engine)[-1] == ("completed", "a")


async def test_a_null_result_is_not_stored(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.complete(Q, [(job.id, job.token, "null")]) == [True]
    h = raw.hgetall(keys.job("a"))
    assert h["st"] == "completed"
    assert "r" not in h  # absent reads as null


async def test_one_batch_releases_each_group_by_its_count(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(3)), new_job("b0", group="b"))
    jobs = await claim(engine, 4)
    assert int(raw.hget(keys.gactive, "a")) == 3
    done = [(j.id, j.token, "1") for j in jobs if j.id != "a2"]
    assert await engine.complete(Q, done) == [True, True, True]
    assert raw.hget(keys.gactive, "a") == "1"  # a2 still runs
    assert raw.hexists(keys.gactive, "b") is False
    assert "b" not in raw.smembers(keys.base + "groups")  # nothing left of group b
    assert "a" in raw.smembers(keys.base + "groups")


async def test_wrong_token_or_unknown_job_is_refused(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    flags = await engine.complete(Q, [("a", "not-the-token", "1"), ("nope", job.token, "1")])
    assert flags == [False, False]
    assert raw.hget(keys.job("a"), "st") == "active"
    assert raw.hget(keys.job("a"), "tk") == job.token
    assert raw.exists(keys.job("nope")) == 0
    assert (await engine.counts(Q)).completed == 0


async def test_completing_twice_records_once(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    """The same completion sent again (its first reply was lost) is answered as recorded,
    and changes nothing."""
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]
    assert await engine.complete(Q, [(job.id, job.token, "2")]) == [True]
    assert raw.hget(keys.job("a"), "r") == "1"
    assert events(raw, engine).count(("completed", "a")) == 1


async def test_a_waiting_job_cannot_be_completed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.release(Q, [(job.id, job.token)])
    raw.hset(keys.job("a"), "tk", job.token)  # even with a matching token left behind
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [False]
    assert raw.hget(keys.job("a"), "st") == "waiting"


async def test_batch_reports_one_flag_per_job(engine: Engine, raw: redis.Redis) -> None:
    await add(engine, new_job("a"), new_job("b"), new_job("c"))
    a, b, c = await claim(engine, 3)
    flags = await engine.complete(
        Q, [(a.id, a.token, "1"), (b.id, "stale", "2"), (c.id, c.token, "3")]
    )
    assert flags == [True, False, True]
    counts = await engine.counts(Q)
    assert (counts.active, counts.completed) == (1, 2)


async def test_stale_token_after_reap_re_lease_is_refused(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", max_stalls=5))
    old = await claim_one(engine, worker="frozen", lease_ms=50)
    await asyncio.sleep(0.1)
    assert (await engine.reap(Q)).counts == (1, 0)
    new = await claim_one(engine, worker="healthy")
    assert new.token != old.token

    assert await engine.complete(Q, [(old.id, old.token, '"late"')]) == [False]
    h = raw.hgetall(keys.job("a"))
    assert (h["st"], h["tk"], h["wk"]) == ("active", new.token, "healthy")
    assert "r" not in h

    assert await engine.complete(Q, [(new.id, new.token, '"fresh"')]) == [True]
    assert raw.hget(keys.job("a"), "r") == '"fresh"'


async def test_keep_completed_zero_deletes_at_once(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", keep_completed_ms=0))
    job = await claim_one(engine)
    await engine.touch(Q, job.id, job.token, log_line="hello")
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]
    assert raw.exists(keys.job("a"), keys.log("a")) == 0
    assert raw.zcard(keys.completed) == 0
    assert raw.zcard(keys.active) == 0
    assert (await engine.counts(Q)).completed == 0
    assert events(raw, engine)[-1] == ("completed", "a")


async def test_keep_completed_zero_still_wakes_waiters(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", keep_completed_ms=0))
    assert await engine.watch(Q, "a") == "waiting"
    assert await engine.watch(Q, "a") == "waiting"
    blocked = asyncio.create_task(engine.wait_done(Q, "a", 0.3))
    await asyncio.sleep(0.02)
    job = await claim_one(engine)
    await engine.complete(Q, [(job.id, job.token, "1")])
    assert await blocked is True  # a caller already blocked is woken
    assert raw.llen(keys.done("a")) == 1  # and one arriving late finds its token
    assert 0 < raw.pttl(keys.done("a")) <= 60_000
    assert await engine.wait_done(Q, "a", 0.1) is True
    assert await engine.watch(Q, "a") is None


async def test_per_job_keep_sets_the_expiry(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, completed_age=DAY_MS)
    await add(engine, new_job("short", keep_completed_ms=5_000), new_job("default"))
    jobs = await claim(engine, 2)
    before = server_ms(raw)
    await engine.complete(Q, [(j.id, j.token, "1") for j in jobs])
    after = server_ms(raw)
    short = raw.zscore(keys.completed, "short")
    default = raw.zscore(keys.completed, "default")
    assert short is not None
    assert default is not None
    assert before + 5_000 <= short <= after + 5_000
    assert before + DAY_MS <= default <= after + DAY_MS


async def test_trims_by_age(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await engine.configure(Q, completed_age=30)
    await add(engine, new_job("old"), new_job("keeper", keep_completed_ms=60_000), new_job("new"))
    old, keeper, new = await claim(engine, 3)
    await engine.complete(Q, [(old.id, old.token, "1"), (keeper.id, keeper.token, "1")])
    await asyncio.sleep(0.06)
    await engine.complete(Q, [(new.id, new.token, "1")])

    assert sorted(raw.zrange(keys.completed, 0, -1)) == ["keeper", "new"]
    assert raw.exists(keys.job("old")) == 0
    assert raw.exists(keys.job("keeper"), keys.job("new")) == 2
    counts = await engine.counts(Q)
    assert (counts.completed, counts.completed_trimmed) == (2, 1)


async def test_trims_by_count(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await engine.configure(Q, completed_max=2)
    ids = [f"j{i}" for i in range(5)]
    await add(engine, *(new_job(i) for i in ids))
    for job in await claim(engine, 5):
        await engine.complete(Q, [(job.id, job.token, "1")])

    kept = raw.zrange(keys.completed, 0, -1)
    assert len(kept) == 2
    assert "j4" in kept  # the newest survives
    assert [i for i in ids if raw.exists(keys.job(i))] == sorted(kept)
    counts = await engine.counts(Q)
    assert (counts.completed, counts.completed_trimmed) == (2, 3)


async def test_trim_in_one_batch(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await engine.configure(Q, completed_max=1)
    await add(engine, *(new_job(f"j{i}") for i in range(4)))
    jobs = await claim(engine, 4)
    assert await engine.complete(Q, [(j.id, j.token, "1") for j in jobs]) == [True] * 4
    assert raw.zcard(keys.completed) == 1
    assert (await engine.counts(Q)).completed_trimmed == 3
    survivors = [j.id for j in jobs if raw.exists(keys.job(j.id))]
    assert survivors == raw.zrange(keys.completed, 0, -1)


async def test_completed_max_zero_keeps_nothing(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, completed_max=0)
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]
    assert raw.zcard(keys.completed) == 0
    assert raw.exists(keys.job("a")) == 0
    assert (await engine.counts(Q)).completed_trimmed == 1


async def test_complete_frees_the_group_slot(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a", group="g"), new_job("b", group="g"))
    a, b = await claim(engine, 2)
    assert raw.hget(keys.gactive, "g") == "2"
    await engine.complete(Q, [(a.id, a.token, "1")])
    assert raw.hget(keys.gactive, "g") == "1"
    await engine.complete(Q, [(b.id, b.token, "1")])
    assert raw.hexists(keys.gactive, "g") is False


async def test_complete_and_claim_in_one_round_trip(engine: Engine, raw: redis.Redis) -> None:
    await add(engine, new_job("a"), new_job("b"), new_job("c"))
    a = await claim_one(engine)
    flags, result = await engine.complete_and_claim(Q, [(a.id, a.token, "1")], 5, "w1", 30_000)
    assert flags == [True]
    assert result is not None
    assert [j.id for j in result.jobs] == ["b", "c"]
    counts = await engine.counts(Q)
    assert (counts.completed, counts.active, counts.waiting) == (1, 2, 0)
    assert await engine.complete_and_claim(Q, [], 0, "w1", 30_000) == ([], None)
