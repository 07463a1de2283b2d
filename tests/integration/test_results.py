"""Results and the read model: values, failures, timeouts, progress, logs and info()."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest

from corral import (
    App,
    Fatal,
    Fixed,
    JobFailed,
    JobNotFound,
    JobState,
    ResultTimeout,
    RetryPolicy,
    current_job,
)
from corral.testing import running_worker
from tests.integration._helpers import NO_RETRY, wait_state, wait_until


async def test_result_returns_the_value(app: App) -> None:
    @app.job(queue="q")
    async def add(a: int, b: int) -> int:
        await asyncio.sleep(0.05)
        return a + b

    async with running_worker(app, ["q"]):
        handle = await add.enqueue(2, 3)
        assert await handle.result(timeout=timedelta(seconds=10)) == 5
        # Asking again after the end answers at once from the stored result.
        assert await handle.result(timeout=1) == 5
        # Several waiters on one job all wake up.
        h2 = await add.enqueue(1, 1)
        results = await asyncio.gather(*(h2.result(timeout=10) for _ in range(5)))
        assert results == [2] * 5


async def test_result_raises_job_failed_for_dead_jobs(app: App) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=2, backoff=Fixed(timedelta(milliseconds=20))))
    async def flaky(n: int) -> int:
        raise ValueError(f"bad input {n}")

    @app.job(queue="q")
    async def refuse() -> None:
        raise Fatal("account closed")

    async with running_worker(app, ["q"]):
        handle = await flaky.enqueue(7)
        with pytest.raises(JobFailed) as info:
            await handle.result(timeout=10)
        fatal = await refuse.enqueue()
        with pytest.raises(JobFailed) as fatal_info:
            await fatal.result(timeout=10)

    err = info.value
    assert err.job_id == handle.id
    assert err.reason == "exhausted"
    assert err.error_type == "ValueError"
    assert err.error_message == "bad input 7"
    assert "exhausted" in str(err) and "ValueError: bad input 7" in str(err)
    assert fatal_info.value.reason == "fatal"
    assert fatal_info.value.error_type == "Fatal"
    assert fatal_info.value.error_message == "account closed"


async def test_result_timeout(app: App) -> None:
    release = asyncio.Event()

    @app.job(queue="q")
    async def slow() -> str:
        await release.wait()
        return "done"

    waiting = await slow.enqueue()
    start = time.monotonic()
    with pytest.raises(ResultTimeout, match="still waiting"):
        await waiting.result(timeout=0.3)
    assert 0.25 <= time.monotonic() - start < 3
    assert isinstance(ResultTimeout("x"), TimeoutError)

    async with running_worker(app, ["q"]):
        await wait_state(app, "q", waiting.id, JobState.ACTIVE)
        with pytest.raises(ResultTimeout, match="still active"):
            await waiting.result(timeout=timedelta(milliseconds=200))
        release.set()
        assert await waiting.result(timeout=10) == "done"


async def test_unknown_job_id(app: App) -> None:
    @app.job(queue="q")
    async def noop() -> None: ...

    handle = app.handle("q", "no-such-job")
    with pytest.raises(JobNotFound, match="no-such-job"):
        await handle.result(timeout=1)
    with pytest.raises(JobNotFound):
        await handle.info()
    with pytest.raises(JobNotFound):
        await app.get_job("q", "no-such-job")
    assert await handle.logs() == []


async def test_progress_and_logs_are_readable_from_the_handle(app: App) -> None:
    step = asyncio.Event()
    go_on = asyncio.Event()

    @app.job(queue="q")
    async def report(n: int) -> str:
        job = current_job()
        job.log(f"starting {n}")
        job.progress(40)
        step.set()
        await go_on.wait()
        job.progress({"stage": "upload", "done": 3})
        job.log("finished")
        assert job.last_progress == {"stage": "upload", "done": 3}
        return "ok"

    @app.job(queue="q")
    def report_thread() -> None:
        current_job().progress(75.5)
        current_job().log("from a thread")

    async with running_worker(app, ["q"]):
        handle = await report.enqueue(1)
        await asyncio.wait_for(step.wait(), 10)
        await wait_until(lambda: _progress_is(handle, 40), what="progress 40")
        assert await handle.logs() == ["starting 1"]
        go_on.set()
        assert await handle.result(timeout=10) == "ok"
        other = await report_thread.enqueue()
        await other.result(timeout=10)

    assert await handle.progress() == {"stage": "upload", "done": 3}
    assert await handle.logs() == ["starting 1", "finished"]
    await wait_until(lambda: _progress_is(other, 75.5), what="thread progress")
    assert await other.logs() == ["from a thread"]


async def _progress_is(handle: object, value: object) -> bool:
    return bool(await handle.progress() == value)  # type: ignore[attr-defined]


async def test_progress_outside_range_is_refused_in_the_handler(app: App) -> None:
    @app.job(queue="q", retry=NO_RETRY)
    async def over() -> None:
        current_job().progress(150)

    async with running_worker(app, ["q"]):
        handle = await over.enqueue()
        with pytest.raises(JobFailed) as info:
            await handle.result(timeout=10)
    assert info.value.error_type == "ValueError"
    assert "0..100" in (info.value.error_message or "")


async def test_info_fields(app: App) -> None:
    inside = asyncio.Event()
    go_on = asyncio.Event()
    calls = 0

    @app.job(
        queue="q",
        retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(milliseconds=30))),
        timeout=timedelta(seconds=20),
    )
    async def shaky(tenant: str) -> str:
        nonlocal calls
        calls += 1
        if calls < 3:
            raise RuntimeError(f"boom {calls}")
        inside.set()
        await go_on.wait()
        return tenant.upper()

    before = datetime.now(UTC)
    handle = await shaky.with_options(priority=100, group="acme").enqueue("acme")
    info = await handle.info()
    assert info.state == JobState.WAITING
    assert (info.id, info.queue, info.name) == (handle.id, "q", "shaky")
    assert info.payload == {"tenant": "acme"}
    assert info.group == "acme"
    assert info.priority == 100
    assert (info.attempt, info.max_attempts) == (0, 3)
    assert info.started_at is None and info.finished_at is None and info.worker is None
    assert info.created_at is not None
    assert (
        before - timedelta(seconds=2) <= info.created_at <= datetime.now(UTC) + timedelta(seconds=2)
    )
    assert info.overrides is None  # the definition's timeout and retry apply: nothing stored
    longer = await shaky.with_options(timeout=timedelta(seconds=30)).enqueue("other")
    overrides = (await longer.info()).overrides
    assert overrides is not None
    assert overrides.timeout == timedelta(seconds=30)
    assert isinstance(overrides.backoff, Fixed)
    await app.queue("q").remove(longer.id)

    async with running_worker(app, ["q"], name="worker-A") as worker:
        await asyncio.wait_for(inside.wait(), 10)
        active = await handle.info()
        assert active.state == JobState.ACTIVE
        assert active.attempt == 3
        assert active.worker == worker.id == "worker-A"
        assert active.started_at is not None and active.finished_at is None
        go_on.set()
        assert await handle.result(timeout=10) == "ACME"

    done = await handle.info()
    assert done.state == JobState.COMPLETED
    assert done.result == "ACME"
    assert done.attempt == 3
    assert done.worker == "worker-A"  # who ran the last attempt stays on record
    assert done.created_at and done.started_at and done.finished_at
    assert done.created_at <= done.started_at <= done.finished_at
    assert [e.attempt for e in done.errors] == [1, 2]
    assert [e.message for e in done.errors] == ["boom 1", "boom 2"]
    for err in done.errors:
        assert err.type == "RuntimeError"
        assert err.worker == "worker-A"
        assert "Traceback (most recent call last)" in err.traceback
        assert "in shaky" in err.traceback and "RuntimeError: boom" in err.traceback
        assert err.at is not None and done.created_at <= err.at <= done.finished_at
    assert done.last_error == done.errors[-1]
    assert done.dead_reason is None
    assert (done.reschedules, done.stalls) == (0, 0)
