"""Random sequences of every transition, each followed by a check of the data model as a whole.

The scripts batch their writes and cache what they read once per call, so a bug would show
as a state that no single script test looks at: a job in two structures or in none, a counter
that drifts, an eligible group left out of the round (its jobs would wait forever), a token
left on a job that is not running. Each seed runs a few hundred random operations (enqueue
with groups, priorities and delays, under a cap on the queue's length or not, claim,
complete, fail, reschedule, RateLimited holds, release, lease expiry and reaping, cancel,
remove, promote, replay, reprioritize, group pause and limits, drain, and the registry of live
workers: heartbeats, exits, listings) and checks every invariant after each one; a failure
names seed and step.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import timedelta

import pytest
import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys, WorkerKeys
from corral.engine.outcomes import Failed, Rescheduled
from corral.errors import QueueFull
from corral.models import WorkerInfo

from .helpers import Q, error, new_job, server_ms

GROUPS = ["", "", "a", "b", "c"]


@dataclass
class Model:
    """What the test knows: the leases it holds (job id -> token), stale ones included."""

    seed: int
    rng: random.Random
    held: dict[str, str] = field(default_factory=dict)
    stale: dict[str, str] = field(default_factory=dict)
    ids: list[str] = field(default_factory=list)
    n: int = 0
    cap: int | None = None  # the queue's max_jobs


def _state(raw: redis.Redis, keys: QueueKeys) -> dict[str, dict[str, str]]:
    jobs: dict[str, dict[str, str]] = {}
    for key in raw.scan_iter(match=keys.base + "j:*", count=1000):
        jobs[key[len(keys.base) + 2 :]] = raw.hgetall(key)
    return jobs


def check(raw: redis.Redis, keys: QueueKeys, where: str) -> None:
    base = keys.base
    jobs = _state(raw, keys)
    sets: dict[str, list[str]] = {}  # job id -> the structures holding it
    waiting_sets = [k for k in raw.scan_iter(match=base + "w:*", count=1000)]
    waiting_by_group: dict[str, list[str]] = {}
    for wkey in waiting_sets:
        group = wkey[len(base) + 2 :]
        members = raw.zrange(wkey, 0, -1)
        assert members, f"{where}: empty waiting set {wkey} left behind"
        waiting_by_group[group] = members
        for m in members:
            sets.setdefault(m, []).append("waiting")
            h = jobs.get(m)
            assert h is not None, f"{where}: waiting entry {m} without a job hash"
            assert h.get("st") == "waiting", f"{where}: {m} in {wkey} but state {h.get('st')}"
            assert h.get("g", "") == group, f"{where}: {m} of group {h.get('g')} in {wkey}"
    for name, states in (
        ("delayed", {"delayed"}),
        ("active", {"active"}),
        ("completed", {"completed"}),
        ("dead", {"dead", "cancelled"}),
    ):
        for m in raw.zrange(base + name, 0, -1):
            sets.setdefault(m, []).append(name)
            h = jobs.get(m)
            assert h is not None, f"{where}: {name} entry {m} without a job hash"
            assert h.get("st") in states, f"{where}: {m} in {name} but state {h.get('st')}"
    for job_id, h in jobs.items():
        held_in = sets.get(job_id, [])
        assert len(held_in) == 1, f"{where}: job {job_id} ({h.get('st')}) is in {held_in}"
        assert raw.exists(base + "d:" + job_id), f"{where}: job {job_id} without its payload"
        token = h.get("tk") or ""
        if h.get("st") == "active":
            assert token and token[0] != "~", f"{where}: active job {job_id} without a token"
        else:  # none, or spent by the worker's own write ('~' + token): never a live one
            assert token[:1] in ("", "~"), (
                f"{where}: {h.get('st')} job {job_id} keeps token {token}"
            )
    for key in raw.scan_iter(match=base + "d:*", count=1000):
        assert key[len(base) + 2 :] in jobs, f"{where}: payload {key} without a job"

    meta = raw.hgetall(base + "meta")
    total_waiting = sum(len(v) for v in waiting_by_group.values())
    assert int(meta.get("waiting", 0)) == total_waiting, f"{where}: waiting counter drifted"

    active_by_group: dict[str, int] = {}
    for h in jobs.values():
        if h.get("st") == "active" and h.get("g"):
            active_by_group[h["g"]] = active_by_group.get(h["g"], 0) + 1
    gactive = {g: int(v) for g, v in raw.hgetall(base + "gactive").items()}
    assert gactive == active_by_group, f"{where}: gactive {gactive} != {active_by_group}"

    groups = raw.smembers(base + "groups")  # known groups: with jobs, or given settings
    live = {g for g in waiting_by_group if g} | set(active_by_group)
    assert live <= groups, f"{where}: groups with jobs {sorted(live - groups)} not known"

    paused = raw.smembers(base + "gpaused")
    limited = set(raw.zrange(base + "limited", 0, -1))
    limits = {g: int(v) for g, v in raw.hgetall(base + "glimit").items()}
    default_limit = int(meta.get("gconc", 0) or 0)

    def at_limit(g: str) -> bool:
        limit = limits.get(g, default_limit) if g else 0
        return limit > 0 and active_by_group.get(g, 0) >= limit

    ready = set(raw.zrange(base + "ready", 0, -1))
    for g in ready:
        assert g in waiting_by_group, f"{where}: group {g!r} ready with nothing waiting"
        assert g not in paused and g not in limited, f"{where}: held group {g!r} in the round"
    for g in waiting_by_group:
        eligible = g == "" or (g not in paused and g not in limited and not at_limit(g))
        if eligible:  # liveness: nothing else would ever put it back
            assert g in ready, f"{where}: eligible group {g!r} with waiting jobs not in the round"


def check_registry(raw: redis.Redis, keys: WorkerKeys, where: str) -> None:
    """Every registered worker has both its info and its time alive, and nothing else is
    there: a heartbeat or an exit never leaves half an entry behind."""
    info = set(raw.hkeys(keys.info))
    alive = set(raw.zrange(keys.alive, 0, -1))
    assert info == alive, f"{where}: worker entries {sorted(info)} != alive {sorted(alive)}"


def worker(worker_id: str, heartbeat_ms: int) -> WorkerInfo:
    return WorkerInfo(
        worker_id, "host", 1, (Q,), 4, 0, (), None, "test", timedelta(milliseconds=heartbeat_ms)
    )


async def step(m: Model, engine: Engine, ops: Engine, raw: redis.Redis, keys: QueueKeys) -> str:
    rng = m.rng
    kind = rng.choices(
        [
            "enqueue",
            "claim",
            "complete",
            "fail",
            "reschedule",
            "release",
            "defer",
            "expire",
            "cancel",
            "remove",
            "promote",
            "replay",
            "priority",
            "group",
            "drain",
            "stale",
            "worker",
            "cap",
        ],
        weights=[14, 12, 9, 4, 3, 2, 2, 2, 2, 1, 2, 2, 1, 3, 1, 2, 3, 1],
    )[0]
    if kind == "enqueue":
        batch = []
        for _ in range(rng.randint(1, 5)):
            m.n += 1
            job_id = rng.choice(m.ids) if m.ids and rng.random() < 0.1 else f"j{m.n}"
            delay = rng.choice([0, 0, 0, 1, 30])
            priority = rng.choice([500, 500, 0, 1000])
            batch.append(
                new_job(job_id, group=rng.choice(GROUPS), priority=priority, delay_ms=delay)
            )
        before = await engine.counts(Q)
        try:
            flags = await engine.enqueue(Q, batch)
        except QueueFull as exc:
            full = exc
        else:
            full = None
        if full is not None:  # all or none: nothing of the batch was written
            after = await engine.counts(Q)
            assert m.cap is not None and full.max_jobs == m.cap
            assert (after.waiting, after.delayed) == (before.waiting, before.delayed)
            assert full.count == before.waiting + before.delayed
            assert 0 < full.refused <= len(batch) and full.count + full.refused > m.cap
            return "full"
        m.ids += [job.id for job in batch]
        after = await engine.counts(Q)
        if m.cap is not None and any(flags):
            assert after.waiting + after.delayed <= m.cap, (after, m.cap)
    elif kind == "cap":
        m.cap = rng.choice([None, None, 3, 8, 15])
        await ops.set_max_jobs(Q, m.cap)
    elif kind == "claim":
        result = await engine.claim(Q, rng.randint(1, 8), "w", 30_000)
        for job in result.jobs:
            m.held[job.id] = job.token
    elif kind in ("complete", "fail", "reschedule", "release", "defer") and m.held:
        chosen = rng.sample(sorted(m.held), rng.randint(1, min(4, len(m.held))))
        items = [(j, m.held.pop(j)) for j in chosen]
        if kind == "complete":
            flags = await engine.complete(Q, [(j, t, rng.choice(["null", "1"])) for j, t in items])
            assert all(flags), f"a held lease was refused: {items} -> {flags}"
        elif kind == "release":
            assert await engine.release(Q, items) == len(items) - await _cancelled(raw, keys, items)
        else:
            for j, t in items:
                if kind == "fail":
                    retry = rng.choice([None, 0, 20])
                    assert await engine.fail(Q, j, t, error(), retry_delay_ms=retry)
                elif kind == "defer":
                    grace = rng.choice([0, 60_000])
                    assert await engine.defer(Q, j, t, rng.choice([0, 20]), grace, error())
                else:
                    hold = rng.choice([0, 0, 40])
                    outcome = await engine.reschedule(Q, j, t, rng.choice([0, 20]), "later", hold)
                    assert outcome is not Rescheduled.REFUSED
    elif kind == "expire" and m.held:
        raw.zadd(keys.active, dict.fromkeys(m.held, 0))  # their leases ran out
        await engine.reap(Q)
        m.stale.update(m.held)
        m.held.clear()
    elif kind == "stale" and m.stale:
        job_id, token = rng.choice(sorted(m.stale.items()))
        if m.held.get(job_id) != token:
            assert await engine.complete(Q, [(job_id, token, "1")]) == [False]
            assert await engine.fail(Q, job_id, token, error(), retry_delay_ms=0) is Failed.REFUSED
    elif kind in ("cancel", "remove", "promote", "replay", "priority") and m.ids:
        job_id = rng.choice(m.ids)
        if kind == "cancel":
            await ops.cancel(Q, job_id, "test", "random")
        elif kind == "remove":
            if await ops.remove(Q, job_id) == 1:
                m.held.pop(job_id, None)
        elif kind == "promote":
            await ops.promote(Q, job_id)
        elif kind == "replay":
            await ops.replay(Q, [job_id], "test")
        else:
            await ops.reprioritize(Q, job_id, rng.choice([0, 500, 1000]))
    elif kind == "group":
        group = rng.choice(["a", "b", "c"])
        action = rng.choice(["pause", "resume", "resume", "limits"])
        if action == "limits":
            await engine.group_action(Q, "limits", group, concurrency=rng.choice(["1", "2", "-"]))
        else:
            await engine.group_action(Q, action, group)
    elif kind == "drain" and rng.random() < 0.3:
        await ops.drain_step(Q, rng.randint(1, 5))
    elif kind == "worker":
        worker_id = rng.choice(["w1", "w2", "w3"])
        action = rng.choice(["beat", "beat", "leave", "list"])
        if action == "beat":  # some so short-lived that they are gone by a later step
            await engine.register_worker(worker(worker_id, rng.choice([1, 5, 10_000])))
        elif action == "leave":
            await engine.unregister_worker(worker_id)
        else:
            listed = await engine.workers()
            now = server_ms(raw)
            assert all(w.alive_until and w.alive_until.timestamp() * 1000 > now - 5 for w in listed)
            k = engine.worker_keys
            assert not raw.zrangebyscore(k.alive, "-inf", now - 5), "a gone worker was kept"
    else:
        return "skip"
    return kind


async def _cancelled(raw: redis.Redis, keys: QueueKeys, items: list[tuple[str, str]]) -> int:
    """Jobs whose cancellation was asked while they ran end instead of going back."""
    return sum(1 for j, _ in items if raw.hexists(keys.job(j), "cx"))


async def settle(m: Model, engine: Engine, raw: redis.Redis, keys: QueueKeys) -> None:
    """Lift every hold and limit, then claim and complete until nothing is left: every job
    that can run must come out (none stuck behind a group that lost its place)."""
    held = raw.zrange(keys.base + "limited", 0, -1)
    if held:
        raw.zadd(keys.base + "limited", dict.fromkeys(held, 0))  # every hold is over
    for g in ("a", "b", "c"):
        await engine.group_action(Q, "resume", g)
        await engine.group_action(Q, "limits", g, concurrency="-")
    if m.held:
        await engine.complete(Q, [(j, t, "null") for j, t in m.held.items()])
        m.held.clear()
    for _ in range(500):
        due = raw.zrange(keys.delayed, 0, -1)
        if due:
            raw.zadd(keys.delayed, dict.fromkeys(due, 0))  # all due now
        result = await engine.claim(Q, 50, "w", 30_000)
        if not result.jobs and not raw.zcard(keys.delayed):
            break
        await engine.complete(Q, [(j.id, j.token, "null") for j in result.jobs])
    counts = await engine.counts(Q)
    assert (counts.waiting, counts.delayed, counts.active) == (0, 0, 0), counts


@pytest.mark.parametrize("seed", range(6))
async def test_random_transitions_keep_the_model_whole(
    engine: Engine, ops: Engine, raw: redis.Redis, keys: QueueKeys, seed: int
) -> None:
    await engine.configure(Q, ev=0, completed_max=20, dead_max=20)  # trimming happens too
    m = Model(seed, random.Random(seed))
    done: list[str] = []
    for i in range(250):
        kind = await step(m, engine, ops, raw, keys)
        done.append(kind)
        where = f"seed {seed} step {i} ({kind}; before: {done[-6:-1]})"
        check(raw, keys, where)
        check_registry(raw, engine.worker_keys, where)
    await settle(m, engine, raw, keys)
    check(raw, keys, f"seed {seed} after settling")
    kinds = set(done)
    assert {"enqueue", "claim", "complete", "worker"} <= kinds, kinds  # it did real work


async def test_the_check_catches_what_it_is_meant_to(
    engine: Engine, raw: redis.Redis, keys: QueueKeys
) -> None:
    await engine.enqueue(Q, [new_job("x", group="a"), new_job("y")])
    check(raw, keys, "valid")
    raw.zrem(keys.ready, "a")  # a group left out of the round: its jobs would wait forever
    with pytest.raises(AssertionError, match="not in the round"):
        check(raw, keys, "lost group")
    raw.zadd(keys.ready, {"a": 0})
    raw.hincrby(keys.meta, "waiting", 1)
    with pytest.raises(AssertionError, match="waiting counter drifted"):
        check(raw, keys, "drift")
    raw.hincrby(keys.meta, "waiting", -1)
    raw.hset(keys.job("y"), "tk", "7")
    with pytest.raises(AssertionError, match="keeps token"):
        check(raw, keys, "token")
