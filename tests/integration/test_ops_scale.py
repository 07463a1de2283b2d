"""Operator tools over 100,000 jobs never block Redis: no single call over 50 ms (SLOWLOG)."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

import redis

from corral import App, JobFilter
from corral.embedded import EmbeddedServer

N = 100_000


def fabricate(client: redis.Redis, prefix: str, state: str, n: int) -> None:
    """Ended jobs as the engine stores them (a hash each plus the state's sorted set)."""
    base = f"{prefix}:{{big}}:"
    now = int(time.time() * 1000)
    old = now - 2 * 3600 * 1000
    error = '{"type": "Fatal", "message": "boom", "traceback": "", "attempt": 1, "at": 0}'
    pipe = client.pipeline(transaction=False)
    for i in range(n):
        job_id = f"{state[:1]}{i:07d}"
        fields = {
            "n": "work",
            "d": f'{{"x": {i}}}',
            "g": "",
            "p": 500,
            "s": i,
            "ma": 1,
            "a": 1,
            "o": "{}",
            "st": state,
            "ct": old,
            "sa": old,
            "fa": old,
        }
        if state == "dead":
            fields.update(dr="fatal", le=error, eh=f"[{error}]")
        pipe.hset(base + "j:" + job_id, mapping=fields)
        pipe.zadd(base + state, {job_id: now + 86_400_000})
        if i % 5000 == 4999:
            pipe.execute()
    pipe.hset(base + "meta", "seq", n)
    pipe.sadd(f"{prefix}:queues", "big")
    pipe.execute()


def slow_calls(client: redis.Redis) -> list[dict[str, object]]:
    return [e for e in client.slowlog_get(128) if e["duration"] >= 50_000]


async def test_clean_and_replay_100k_without_a_slow_call(
    fresh_server: Callable[..., EmbeddedServer], prefix: str
) -> None:
    srv = fresh_server()
    client = redis.Redis.from_url(srv.url, decode_responses=True)
    fabricate(client, prefix, "completed", N)
    fabricate(client, prefix, "dead", N)
    client.config_set("slowlog-log-slower-than", 50_000)  # µs
    client.slowlog_reset()

    app = App.from_url(srv.url, prefix=prefix)
    async with app:
        q = app.queue("big")
        steps: list[int] = []
        assert (
            await q.clean("completed", timedelta(hours=1), progress=lambda d, t: steps.append(d))
            == N
        )
        assert len(steps) >= N // 200  # bounded batches, each its own call
        assert await q.dead_letters.count(JobFilter(error_type="Fatal")) == N
        report = await q.dead_letters.replay(by="scale-test")
        assert (report.matched, report.replayed) == (N, N)
        counts = await q.counts()
        assert (counts.completed, counts.dead, counts.waiting) == (0, 0, N)
        assert await q.drain() == N
    assert slow_calls(client) == []
    client.close()
