"""groups.lua: pause, resume and per-group limits ('' keeps a setting, '-' removes it)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys
from corral.errors import ConfigError
from corral.groups import RateLimit
from corral.models import GroupState

from .helpers import Q, add, claim, claim_one, new_job, server_ms

FIVE_PER_S = RateLimit(5, timedelta(seconds=1))


def _ms(moment: datetime | None) -> int | None:
    return None if moment is None else round(moment.timestamp() * 1000)


async def _state(engine: Engine, group: str) -> GroupState:
    (state,) = await engine.group_states(Q, [group])
    return state


async def test_paused_group_is_skipped_and_others_are_served(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("b1", group="b"), new_job("u1"))
    assert await engine.group_action(Q, "pause", "a") is False
    assert raw.sismember(keys.base + "gpaused", "a") == 1
    assert raw.zscore(keys.ready, "a") is None

    assert sorted(j.id for j in await claim(engine, 5)) == ["b1", "u1"]
    # new work for a paused group waits too
    await add(engine, new_job("a2", group="a"))
    assert raw.zscore(keys.ready, "a") is None
    assert await claim(engine, 5) == []
    state = await _state(engine, "a")
    assert (state.paused, state.ready, state.waiting) == (True, False, 2)

    raw.delete(keys.marker)
    assert await engine.group_action(Q, "resume", "a") is True
    assert raw.sismember(keys.base + "gpaused", "a") == 0
    assert raw.zscore(keys.marker, "m") is not None
    assert [j.id for j in await claim(engine, 5)] == ["a1", "a2"]


async def test_pausing_twice_and_resuming_twice(engine: Engine, keys: QueueKeys) -> None:
    await add(engine, new_job("a1", group="a"))
    assert await engine.group_action(Q, "pause", "a") is False
    assert await engine.group_action(Q, "pause", "a") is False
    assert await engine.group_action(Q, "resume", "a") is True
    assert await engine.group_action(Q, "resume", "a") is True
    assert [j.id for j in await claim(engine, 5)] == ["a1"]


async def test_running_jobs_of_a_paused_group_finish(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("a2", group="a"))
    job = await claim_one(engine)
    assert await engine.group_action(Q, "pause", "a") is False
    assert await engine.heartbeat(Q, 30_000, [(job.id, job.token)]) == ([], [])
    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]
    # the freed slot does not bring the paused group back
    assert raw.zscore(keys.ready, "a") is None
    assert raw.hexists(keys.gactive, "a") is False
    assert await claim(engine, 5) == []


async def test_resume_of_a_group_without_waiting_jobs(engine: Engine, keys: QueueKeys) -> None:
    assert await engine.group_action(Q, "pause", "idle") is False
    # a paused group is known even with no jobs, so it can be listed and resumed
    assert await engine.scan_groups(Q) == (0, ["idle"])
    assert (await _state(engine, "idle")).paused is True
    assert await engine.group_action(Q, "resume", "idle") is False
    assert (await _state(engine, "idle")).paused is False


async def test_limits_set_keep_and_remove(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.group_action(Q, "limits", "a", concurrency="2", rate="5:1000", weight="2.5")
    assert raw.hget(keys.base + "glimit", "a") == "2"
    assert raw.hget(keys.base + "grate", "a") == "5:1000"
    assert raw.hget(keys.base + "gweight", "a") == "2.5"
    state = await _state(engine, "a")
    assert (state.concurrency, state.rate, state.weight) == (2, FIVE_PER_S, 2.5)

    # '' keeps each setting
    await engine.group_action(Q, "limits", "a", concurrency="3")
    state = await _state(engine, "a")
    assert (state.concurrency, state.rate, state.weight) == (3, FIVE_PER_S, 2.5)

    # '-' removes one, the others stay
    await engine.group_action(Q, "limits", "a", rate="-")
    state = await _state(engine, "a")
    assert (state.concurrency, state.rate, state.weight) == (3, None, 2.5)

    await engine.group_action(Q, "limits", "a", concurrency="-", rate="-", weight="-")
    state = await _state(engine, "a")
    assert (state.concurrency, state.rate, state.weight) == (None, None, None)
    for name in ("glimit", "grate", "gweight"):
        assert raw.hexists(keys.base + name, "a") is False


async def test_lowering_concurrency_below_running_holds_the_group(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(4)))
    a0 = await claim_one(engine)
    assert raw.zscore(keys.ready, "a") is not None
    assert await engine.group_action(Q, "limits", "a", concurrency="1") is False
    assert raw.zscore(keys.ready, "a") is None
    assert await claim(engine, 5) == []

    raw.delete(keys.marker)
    assert await engine.group_action(Q, "limits", "a", concurrency="3") is True
    assert raw.zscore(keys.marker, "m") is not None
    assert [j.id for j in await claim(engine, 5)] == ["a1", "a2"]  # 3 running now
    await engine.complete(Q, [(a0.id, a0.token, "1")])
    assert [j.id for j in await claim(engine, 5)] == ["a3"]


async def test_removing_the_group_limit_falls_back_to_the_queue_default(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await engine.configure(Q, gconc=1)
    await engine.group_action(Q, "limits", "a", concurrency="3")
    await add(engine, *(new_job(f"a{i}", group="a") for i in range(4)))
    assert len(await claim(engine, 5)) == 3
    assert await engine.group_action(Q, "limits", "a", concurrency="-") is False
    assert await claim(engine, 5) == []
    assert (await _state(engine, "a")).active == 3


async def test_limits_on_a_held_group_keep_it_held(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("a2", group="a"))
    job = await claim_one(engine)
    before = server_ms(raw)
    assert await engine.reschedule(Q, "a1", job.token, 0, "slow down", hold_ms=60_000) == 1
    assert await engine.group_action(Q, "limits", "a", concurrency="5") is False
    assert await engine.group_action(Q, "resume", "a") is False
    state = await _state(engine, "a")
    until = _ms(state.limited_until)
    assert isinstance(until, int)
    assert before + 60_000 <= until <= server_ms(raw) + 60_000
    assert (state.ready, state.waiting) == (False, 2)
    assert await claim(engine, 5) == []


async def test_default_group_has_no_settings(engine: Engine, keys: QueueKeys) -> None:
    for action in ("pause", "resume", "limits"):
        with pytest.raises(ConfigError, match="default group"):
            await engine.group_action(Q, action, "")


async def test_unknown_action_is_refused(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    with pytest.raises(ConfigError, match="unknown action"):
        await engine.group_action(Q, "explode", "a")
    assert raw.scard(keys.base + "groups") == 0


async def test_group_states_reports_each_group(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a1", group="a"), new_job("a2", group="a"), new_job("b1", group="b"))
    await claim_one(engine)
    await engine.group_action(Q, "pause", "b")
    states = await engine.group_states(Q, ["a", "b", "nope"])
    assert states == [
        GroupState("a", 1, 1, False, None, True, None, None, None),
        GroupState("b", 1, 0, True, None, False, None, None, None),
        GroupState("nope", 0, 0, False, None, False, None, None, None),
    ]


async def test_scan_groups_lists_known_groups(engine: Engine, keys: QueueKeys) -> None:
    await add(engine, new_job("a1", group="a"), new_job("b1", group="b"), new_job("u"))
    assert await engine.scan_groups(Q) == (0, ["a", "b"])
    jobs = {j.id: j for j in await claim(engine, 3)}
    assert await engine.scan_groups(Q) == (0, ["a", "b"])  # running jobs keep them known
    a1 = jobs["a1"]
    await engine.complete(Q, [(a1.id, a1.token, "1")])
    assert await engine.scan_groups(Q) == (0, ["b"])
