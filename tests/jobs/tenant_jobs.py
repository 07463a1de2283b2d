"""Jobs for the multi-process group tests: each records its start and end in Redis.

Run by real `corral worker` processes (``tests.jobs.tenant_jobs:app``); the trace list lives
under the test's own prefix so tests never see each other's traces.
"""

from __future__ import annotations

import functools
import os
import time

import redis
from pydantic import BaseModel

from corral import App, RateLimited, current_job

app = App.from_env()


class Task(BaseModel):
    shop: str
    n: int
    sleep_ms: int = 0
    rate_limit_ms: int = 0


@functools.cache
def _client() -> redis.Redis:
    return redis.Redis.from_url(os.environ["CORRAL_REDIS_URL"], decode_responses=True)


def trace_key() -> str:
    return f"{os.environ.get('CORRAL_PREFIX', 'corral')}:trace"


def _record(kind: str, task: Task) -> None:
    stamp = time.time() * 1000
    _client().rpush(trace_key(), f"{kind}|{task.shop}|{task.n}|{stamp:.3f}|{os.getpid()}")


@app.job(queue="tenants", group=lambda task: task.shop)
def tenant_task(task: Task) -> int:
    _record("start", task)
    if task.rate_limit_ms and current_job().reschedules == 0:
        _record("limited", task)
        raise RateLimited(delay=task.rate_limit_ms / 1000, message="429 from the shop API")
    time.sleep(task.sleep_ms / 1000)
    _record("end", task)
    return task.n
