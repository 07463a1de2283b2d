"""Retries with real workers: backoff curves really delay, exhaustion, Fatal and Retry(delay)."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from corral import (
    App,
    Custom,
    DeadReason,
    Exponential,
    Fatal,
    Fixed,
    JobFailed,
    JobState,
    Linear,
    Retry,
    RetryPolicy,
)
from corral.retry import Backoff
from corral.testing import running_worker
from tests.integration._helpers import NO_RETRY, wait_state

MS = timedelta(milliseconds=1)


def custom_wait(attempt: int, error: BaseException | None) -> timedelta:
    # Waits depend on the error: the handler says how long in its message.
    assert isinstance(error, LookupError)
    return timedelta(milliseconds=int(str(error.args[0])))


@pytest.mark.parametrize(
    ("backoff", "expected_ms"),
    [
        (Fixed(300 * MS), [300, 300]),
        (Linear(step=200 * MS), [200, 400]),
        (Linear(step=300 * MS, cap=350 * MS), [300, 350]),
        (Exponential(base=150 * MS, factor=3.0), [150, 450]),
        (Custom(custom_wait), [250, 250]),
    ],
    ids=["fixed", "linear", "linear-capped", "exponential", "custom"],
)
async def test_backoff_delays_between_attempts(
    app: App, backoff: Backoff, expected_ms: list[int]
) -> None:
    starts: list[float] = []

    @app.job(queue="q", retry=RetryPolicy(attempts=3, backoff=backoff))
    async def always_fails() -> None:
        starts.append(time.monotonic())
        raise KeyError("250")

    async with running_worker(app, ["q"]):
        handle = await always_fails.enqueue()
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=15)

    assert failed.value.reason == DeadReason.EXHAUSTED
    assert len(starts) == 3
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    for gap, want in zip(gaps, expected_ms, strict=True):
        assert want / 1000 * 0.9 <= gap < want / 1000 + 2.0, (gaps, expected_ms)

    info = await handle.info()
    assert info.state == JobState.DEAD
    assert info.dead_reason == "exhausted"
    assert info.attempt == 3
    assert [e.attempt for e in info.errors] == [1, 2, 3]
    assert all(e.type == "KeyError" for e in info.errors)
    stamps = [e.at for e in info.errors]
    assert all(s is not None for s in stamps)
    for (a, b), want in zip(zip(stamps, stamps[1:], strict=False), expected_ms, strict=True):
        assert a is not None and b is not None
        assert b - a >= timedelta(milliseconds=want * 0.9)


async def test_exhausted_jobs_keep_their_attempt_history(app: App) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=4, backoff=Fixed(20 * MS)))
    def broken(n: int) -> None:
        raise OSError(f"disk {n} full")

    async with running_worker(app, ["q"]) as worker:
        handle = await broken.enqueue(9)
        with pytest.raises(JobFailed, match=r"exhausted.*OSError: disk 9 full"):
            await handle.result(timeout=10)
        counts = await app.queue("q").counts()

    info = await handle.info()
    assert (info.attempt, info.max_attempts) == (4, 4)
    assert [(e.attempt, e.type, e.message) for e in info.errors] == [
        (i, "OSError", "disk 9 full") for i in (1, 2, 3, 4)
    ]
    assert info.finished_at is not None
    assert (counts.dead, counts.waiting, counts.delayed, counts.active) == (1, 0, 0, 0)
    assert worker.stats.failed_attempts == 4
    assert worker.stats.retried == 3
    assert worker.stats.dead_reasons == {"exhausted": 1}


async def test_fatal_goes_dead_after_one_attempt(app: App) -> None:
    calls = 0

    @app.job(queue="q", retry=RetryPolicy(attempts=5, backoff=Fixed(10 * MS)))
    def validate(email: str) -> None:
        nonlocal calls
        calls += 1
        raise Fatal(f"{email} is not deliverable")

    async with running_worker(app, ["q"]):
        handle = await validate.enqueue("x@example.invalid")
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=10)

    assert calls == 1
    assert failed.value.reason == "fatal"
    info = await handle.info()
    assert (info.state, info.dead_reason, info.attempt) == (JobState.DEAD, "fatal", 1)
    assert len(info.errors) == 1
    assert info.errors[0].type == "Fatal"
    assert "not deliverable" in info.errors[0].message


async def test_retry_reschedules_without_counting_an_attempt(app: App) -> None:
    starts: list[float] = []

    @app.job(queue="q", retry=NO_RETRY)
    async def rate_limited() -> str:
        starts.append(time.monotonic())
        if len(starts) < 3:
            raise Retry(delay=timedelta(milliseconds=300), message="429 from upstream")
        return "sent"

    async with running_worker(app, ["q"]) as worker:
        handle = await rate_limited.enqueue()
        # With attempts=1 a counted failure would be fatal; Retry is not a failure.
        assert await handle.result(timeout=10) == "sent"

    info = await handle.info()
    assert info.attempt == 1
    assert info.reschedules == 2
    assert info.errors == []
    gaps = [b - a for a, b in zip(starts, starts[1:], strict=False)]
    assert all(0.27 <= g < 3.0 for g in gaps), gaps
    assert worker.stats.rescheduled == 2
    assert worker.stats.failed_attempts == 0


async def test_retry_is_bounded_by_max_reschedules(app: App) -> None:
    calls = 0

    @app.job(queue="q", max_reschedules=2)
    def never_ready() -> None:
        nonlocal calls
        calls += 1
        raise Retry(0.02)

    async with running_worker(app, ["q"]) as worker:
        handle = await never_ready.enqueue()
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=10)

    assert calls == 3
    assert failed.value.reason == DeadReason.RESCHEDULED_TOO_OFTEN
    info = await wait_state(app, "q", handle.id, JobState.DEAD)
    assert info.dead_reason == "rescheduled_too_often"
    assert info.reschedules == 3
    assert info.attempt == 0  # no attempt was ever counted as failed
    assert info.errors[-1].type == "Retry"
    assert "limit 2" in info.errors[-1].message
    assert worker.stats.dead_reasons == {"rescheduled_too_often": 1}

    # Per-call override of the bound.
    calls = 0
    async with running_worker(app, ["q"]):
        strict = await never_ready.with_options(max_reschedules=0).enqueue()
        with pytest.raises(JobFailed, match="rescheduled_too_often"):
            await strict.result(timeout=10)
    assert calls == 1
