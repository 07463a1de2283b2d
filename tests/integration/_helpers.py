"""Small helpers shared by the integration tests (polling with generous bounds)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import redis

from corral import App, Fixed, RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, backoff=Fixed(timedelta(milliseconds=50)))
NO_RETRY = RetryPolicy(attempts=1, backoff=Fixed(timedelta(0)))
SHORT_LEASE = timedelta(seconds=2)


async def wait_until(
    predicate: Callable[[], Awaitable[bool] | bool],
    timeout: float = 10.0,
    interval: float = 0.02,
    what: str = "condition",
) -> None:
    """Poll ``predicate`` (sync or async) until it is true; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if isinstance(value, Awaitable):
            value = await value
        if value:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await asyncio.sleep(interval)


async def wait_state(app: App, queue: str, job_id: str, state: str, timeout: float = 10.0) -> Any:
    """Wait until the job is in ``state``; returns its JobInfo."""
    seen: list[Any] = []

    async def check() -> bool:
        info = await app.get_job(queue, job_id)
        seen[:] = [info]
        return bool(info.state == state)

    await wait_until(check, timeout, what=f"job {job_id} to be {state}")
    return seen[0]


def keys_of(raw: redis.Redis, prefix: str) -> list[str]:
    """Every key under the test's prefix."""
    return sorted(raw.scan_iter(match=f"{prefix}:*", count=1000))  # type: ignore[arg-type]
