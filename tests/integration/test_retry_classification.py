"""Retry classification and queue defaults end to end, with real workers: ``retry_on`` retries
only what it names, ``fatal_on`` never, in every mode (a process-mode error by its class chain);
a queue's defaults reach the stored job and the worker."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from corral import App, DeadReason, Fixed, JobFailed, Priority, RetryPolicy, Settings
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.jobs import classified_jobs

FAST = Fixed(timedelta(milliseconds=20))


async def test_retry_on_and_fatal_on_decide_with_a_real_worker(app: App) -> None:
    calls: dict[str, int] = {}

    @app.job(
        queue="q",
        retry=RetryPolicy(attempts=3, backoff=FAST),
        retry_on=(ConnectionError,),
        fatal_on=(ValueError,),
    )
    def sync_call(kind: str) -> str:
        calls[kind] = calls.get(kind, 0) + 1
        if kind == "flaky" and calls[kind] < 3:
            raise ConnectionResetError("reset by peer")  # a ConnectionError: retried
        if kind == "bad":
            raise ValueError("invalid input")
        if kind == "bug":
            raise KeyError("missing")
        return kind

    async with running_worker(app, ["q"]):
        flaky = await sync_call.enqueue("flaky")
        bad = await sync_call.enqueue("bad")
        bug = await sync_call.enqueue("bug")
        assert await flaky.result(timeout=10) == "flaky"
        for handle, reason, kind in (
            (bad, "fatal", "ValueError"),
            (bug, "not_retryable", "KeyError"),
        ):
            with pytest.raises(JobFailed) as failed:
                await handle.result(timeout=10)
            assert (failed.value.reason, failed.value.error_type) == (reason, kind)
            info = await handle.info()
            assert info.attempt == 1 and info.dead_reason == reason
    assert calls == {"flaky": 3, "bad": 1, "bug": 1}
    assert (await flaky.info()).attempt == 3


@pytest.fixture
async def classified_app(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    app = classified_jobs.app
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


async def test_a_process_mode_error_is_classified_by_its_class_chain(classified_app: App) -> None:
    call = classified_jobs.call_upstream
    async with running_worker(classified_app, ["classified"], process_slots=1):
        handles = {kind: await call.enqueue(kind) for kind in ("down", "bad", "bug")}
        outcome = {}
        for kind, handle in handles.items():
            with pytest.raises(JobFailed) as failed:
                await handle.result(timeout=60)
            outcome[kind] = (failed.value.reason, (await handle.info()).attempt)
    assert outcome == {
        "down": (DeadReason.EXHAUSTED, 3),  # retried: a subclass of ConnectionError
        "bad": (DeadReason.FATAL, 1),
        "bug": (DeadReason.NOT_RETRYABLE, 1),
    }


async def test_queue_defaults_reach_the_stored_job_and_the_worker(app: App) -> None:
    app.queue_defaults("tier", priority=Priority.HIGH, retry=RetryPolicy(attempts=2, backoff=FAST))
    runs: list[int] = []

    @app.job(queue="tier")
    async def fails() -> None:
        runs.append(1)
        raise RuntimeError("always")

    async with running_worker(app, ["tier"]):
        handle = await fails.enqueue()
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=10)
    info = await handle.info()
    assert failed.value.reason == DeadReason.EXHAUSTED
    assert (info.priority, info.max_attempts, info.attempt, len(runs)) == (100, 2, 2, 2)
