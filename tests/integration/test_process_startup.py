"""Process mode: a job's timeout runs from the moment its child calls the handler. Children
import the job modules before they take jobs (and again when one is replaced after a timeout);
a child that cannot get there within the start-up limit fails the job with its own error."""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
from collections.abc import AsyncIterator
from types import ModuleType

import pytest

from corral import App, JobFailed, JobTimeout, Settings
from corral.context import JobContext
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from corral.worker.process import ProcessPool, StartupTimeout


@pytest.fixture(scope="module")
def slow_jobs() -> ModuleType:
    return importlib.import_module("tests.jobs.slow_import_jobs")  # 2 s, once


@pytest.fixture
async def slow_app(
    slow_jobs: ModuleType, server: EmbeddedServer, prefix: str
) -> AsyncIterator[App]:
    app: App = slow_jobs.app
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


async def test_slow_import_does_not_count_against_the_timeout(
    slow_app: App, slow_jobs: ModuleType
) -> None:
    # Enqueued before the worker starts: its first child is still importing when it is claimed.
    first = await slow_jobs.quick.enqueue()
    async with running_worker(slow_app, ["slow-import"], process_slots=1):
        first_pid = await first.result(timeout=60)
        stuck = await slow_jobs.stall.enqueue(60)
        with pytest.raises(JobFailed) as failed:
            await stuck.result(timeout=60)
        # The child was killed; its replacement imports the module again before taking a job.
        again = await slow_jobs.quick.enqueue()
        second_pid = await again.result(timeout=60)
    assert failed.value.error_type == "JobTimeout"
    assert "1.5s" in (failed.value.error_message or "")
    assert second_pid != first_pid


def _ctx(name: str) -> JobContext:
    return JobContext(
        id="job-1",
        queue="q",
        name=name,
        attempt=1,
        max_attempts=1,
        group=None,
        writer=lambda progress, line: None,
    )


async def test_a_job_module_not_warmed_is_imported_before_the_clock_starts(
    slow_jobs: ModuleType,
) -> None:
    """A child given a job it has not imported (one of a queue this worker does not serve)
    imports it within the start-up limit, not within the job's timeout."""
    pool = ProcessPool(1)  # warmed with nothing
    try:
        pid = await pool.run(slow_jobs.__name__, "quick", "{}", _ctx("quick"), timeout=1.5)
    finally:
        pool.close()
    assert int(pid) > 0


async def test_a_hung_import_fails_the_job_with_a_startup_error() -> None:
    module = "tests.jobs.hung_import_jobs"  # never imported here: it would hang this process
    pool = ProcessPool(1, [(module, "never", "never")], startup_limit=3)
    pool.start()
    try:
        with pytest.raises(StartupTimeout) as failed:
            await pool.run(module, "never", "{}", _ctx("never"), timeout=1)
    finally:
        pool.close()
    assert failed.value.type_name == "ProcessStartupTimeout"
    assert module in str(failed.value)
    assert "3s" in str(failed.value)


async def test_a_draining_pool_does_not_replace_its_children(slow_jobs: ModuleType) -> None:
    """Once the worker is stopping, a child killed with its job (a timeout, a cancel) is not
    replaced by a fresh one that would only be killed at close."""
    pool = ProcessPool(2, [(slow_jobs.__name__, "stall", "stall")])
    pool.start()
    try:
        assert int(await pool.run(slow_jobs.__name__, "quick", "{}", _ctx("quick"), None)) > 0
        pool.drain()
        with pytest.raises(JobTimeout):
            await pool.run(slow_jobs.__name__, "stall", '{"seconds": 60}', _ctx("stall"), 0.5)
        await asyncio.sleep(0.5)  # a replacement would have been started by now
        alive = [c for c in multiprocessing.active_children() if c.name == "corral-process-job"]
        assert len(alive) == 1, alive  # the other warmed child only
        assert not pool._warming
    finally:
        pool.close()
    assert not [c for c in multiprocessing.active_children() if c.name == "corral-process-job"]
