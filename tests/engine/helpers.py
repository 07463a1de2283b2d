"""Small builders shared by the engine tests (one module per Lua script)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import redis

from corral.engine import Claimed, Engine, JobSpec, NewJob
from corral.models import ErrorRecord, JobOverrides

Q = "q"
DAY_MS = 86_400_000


def new_job(
    job_id: str,
    *,
    name: str = "task",
    payload: str = '{"x": 1}',
    group: str = "",
    priority: Any = 0,
    delay_ms: Any = 0,
    max_attempts: Any = 3,
    overrides: JobOverrides | None = None,
    max_stalls: int = 1,
    max_reschedules: int = 25,
    keep_completed_ms: int = -1,
    keep_dead_ms: int = -1,
) -> NewJob:
    """A NewJob with test defaults; Any-typed numbers so tests can smuggle in bad values."""
    spec = JobSpec(
        name,
        priority,
        max_attempts,
        overrides,
        max_stalls,
        max_reschedules,
        keep_completed_ms,
        keep_dead_ms,
    )
    return NewJob(job_id, payload, group, delay_ms, spec)


async def add(engine: Engine, *jobs: NewJob, queue: str = Q) -> list[bool]:
    return await engine.enqueue(queue, list(jobs))


async def claim(
    engine: Engine, n: int = 1, *, worker: str = "w1", lease_ms: int = 30_000, queue: str = Q
) -> list[Claimed]:
    return (await engine.claim(queue, n, worker, lease_ms)).jobs


async def claim_one(engine: Engine, **kw: Any) -> Claimed:
    jobs = await claim(engine, 1, **kw)
    assert len(jobs) == 1, jobs
    return jobs[0]


def error(message: str = "boom", attempt: int = 1, kind: str = "ValueError") -> ErrorRecord:
    return ErrorRecord(attempt, kind, message, "", datetime(2026, 1, 1, tzinfo=UTC))


def server_ms(raw: redis.Redis) -> int:
    sec, usec = raw.time()
    return int(sec) * 1000 + int(usec) // 1000


def queue_keys(raw: redis.Redis, engine: Engine, queue: str = Q) -> list[str]:
    """Every key of one queue (the queue's own key space, not the registry)."""
    return sorted(cast(list[str], raw.keys(engine.keys(queue).base + "*")))


def events(raw: redis.Redis, engine: Engine, queue: str = Q) -> list[tuple[str, str]]:
    entries = cast(list[tuple[str, dict[str, str]]], raw.xrange(engine.keys(queue).events))
    return [(f["e"], f["id"]) for _, f in entries]
