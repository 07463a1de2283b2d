"""touch.lua: progress and log lines from a running handler, only while it holds the lease."""

from __future__ import annotations

import redis

from corral.engine import Engine
from corral.engine.keys import QueueKeys

from .helpers import Q, add, claim_one, new_job


async def test_writes_progress_and_log_lines(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.touch(Q, "a", job.token, progress_json="10", log_line="start")
    assert await engine.touch(Q, "a", job.token, progress_json='{"pct": 50}')
    assert await engine.touch(Q, "a", job.token, log_line="halfway")
    assert raw.hget(keys.job("a"), "pg") == '{"pct": 50}'
    assert await engine.job_logs(Q, "a") == ["start", "halfway"]


async def test_empty_values_change_nothing(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.touch(Q, "a", job.token, progress_json="5", log_line="x")
    assert await engine.touch(Q, "a", job.token) is True
    assert raw.hget(keys.job("a"), "pg") == "5"
    assert raw.lrange(keys.log("a"), 0, -1) == ["x"]


async def test_log_lines_are_capped(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    for i in range(7):
        assert await engine.touch(Q, "a", job.token, log_line=f"line {i}", max_log_lines=3)
    assert await engine.job_logs(Q, "a") == ["line 4", "line 5", "line 6"]
    assert raw.llen(keys.log("a")) == 3


async def test_is_fenced_by_the_token(engine: Engine, keys: QueueKeys, raw: redis.Redis) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    assert await engine.touch(Q, "a", "stale", progress_json="99", log_line="nope") is False
    assert await engine.touch(Q, "missing", job.token, progress_json="1", log_line="x") is False
    assert raw.hexists(keys.job("a"), "pg") is False
    assert raw.exists(keys.log("a"), keys.log("missing"), keys.job("missing")) == 0


async def test_refused_once_the_job_has_ended(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))
    job = await claim_one(engine)
    await engine.touch(Q, "a", job.token, progress_json="50")
    await engine.complete(Q, [(job.id, job.token, "1")])
    assert await engine.touch(Q, "a", job.token, progress_json="75", log_line="late") is False
    assert raw.hget(keys.job("a"), "pg") == "50"
    assert raw.exists(keys.log("a")) == 0
