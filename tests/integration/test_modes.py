"""Handlers in each mode (async, thread, process) run, honour timeouts and report progress."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, JobFailed, JobFilter, JobState, Settings
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._helpers import NO_RETRY, wait_until
from tests.jobs import process_jobs
from tests.jobs.process_jobs import Matrix, Summary


@pytest.fixture
async def proc_app(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    app = process_jobs.app
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


async def test_async_and_thread_handlers_run(app: App) -> None:
    where: dict[str, str] = {}

    @app.job(queue="q")
    async def in_loop(x: int) -> int:
        where["async"] = threading.current_thread().name
        await asyncio.sleep(0.01)
        return x + 1

    @app.job(queue="q")
    def in_thread(x: int) -> int:
        where["thread"] = threading.current_thread().name
        time.sleep(0.01)
        return x * 10

    assert in_loop.mode == "async" and in_thread.mode == "thread"
    async with running_worker(app, ["q"]):
        a = await in_loop.enqueue(1)
        t = await in_thread.enqueue(2)
        assert await a.result(timeout=10) == 2
        assert await t.result(timeout=10) == 20
    assert where["async"] == threading.current_thread().name
    assert where["thread"].startswith("corral-job")


async def test_thread_handlers_run_concurrently(app: App) -> None:
    barrier = threading.Barrier(3, timeout=10)

    @app.job(queue="q")
    def meet() -> bool:
        barrier.wait()  # only returns if three handlers run at the same time
        return True

    async with running_worker(app, ["q"], concurrency=3):
        handles = [await meet.enqueue() for _ in range(3)]
        assert [await h.result(timeout=15) for h in handles] == [True] * 3


async def test_async_timeout(app: App) -> None:
    finished = []

    @app.job(queue="q", retry=NO_RETRY, timeout=timedelta(milliseconds=300))
    async def stuck() -> None:
        await asyncio.sleep(30)
        finished.append(True)

    @app.job(queue="q")
    async def after() -> str:
        return "still serving"

    async with running_worker(app, ["q"]):
        start = time.monotonic()
        handle = await stuck.enqueue()
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=10)
        assert time.monotonic() - start < 5
        assert await (await after.enqueue()).result(timeout=10) == "still serving"
    assert failed.value.error_type == "JobTimeout"
    assert "0.3s" in (failed.value.error_message or "")
    assert failed.value.reason == "exhausted"
    assert finished == []


async def test_thread_timeout(app: App) -> None:
    @app.job(queue="q", retry=NO_RETRY)
    def sleepy(seconds: float) -> str:
        time.sleep(seconds)
        return "woke"

    async with running_worker(app, ["q"]):
        start = time.monotonic()
        handle = await sleepy.with_options(timeout=timedelta(milliseconds=300)).enqueue(1.5)
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=10)
        assert time.monotonic() - start < 1.4  # the worker did not wait for the thread
        ok = await sleepy.enqueue(0.01)
        assert await ok.result(timeout=10) == "woke"
    assert failed.value.error_type == "JobTimeout"
    # The abandoned thread's late return value never reaches the job.
    await asyncio.sleep(1.5)
    info = await handle.info()
    assert info.state == JobState.DEAD and info.result is None


async def test_process_handlers_run_in_child_processes(proc_app: App) -> None:
    async with running_worker(proc_app, ["proc"], process_slots=2):
        handle = await process_jobs.crunch.enqueue(Matrix(rows=[[1, 2], [3, 4]]), scale=10)
        summary = await handle.result(timeout=30)
        many = [await process_jobs.count_to.enqueue(n) for n in range(6)]
        assert [await h.result(timeout=30) for h in many] == list(range(6))
    assert isinstance(summary, Summary)
    assert summary.total == 100
    assert summary.pid != os.getpid()


async def test_process_errors_fatal_and_retry(proc_app: App, tmp_path: Path) -> None:
    async with running_worker(proc_app, ["proc"], process_slots=1):
        boom = await process_jobs.explode.enqueue("kaput")
        with pytest.raises(JobFailed) as failed:
            await boom.result(timeout=30)
        fatal = await process_jobs.give_up.enqueue("nope")
        with pytest.raises(JobFailed) as fatal_failed:
            await fatal.result(timeout=30)
        again = await process_jobs.come_back.enqueue(str(tmp_path / "marker"))
        assert await again.result(timeout=30) == 1
        died = await process_jobs.die_hard.enqueue()
        with pytest.raises(JobFailed) as died_failed:
            await died.result(timeout=30)
        # The dead child was replaced: the pool still serves.
        assert await (await process_jobs.count_to.enqueue(5)).result(timeout=30) == 5

    assert failed.value.reason == "exhausted"
    assert failed.value.error_type == "ValueError"
    info = await boom.info()
    assert info.attempt == 2
    assert "in explode" in info.errors[0].traceback  # the child's traceback came back
    assert "ValueError: kaput" in info.errors[0].traceback
    assert fatal_failed.value.reason == "fatal"
    assert (await fatal.info()).attempt == 1
    assert (await again.info()).reschedules == 1
    assert died_failed.value.error_type == "ChildProcessDied"


async def test_process_errors_carry_their_class_chain(proc_app: App, tmp_path: Path) -> None:
    """Issue 13.2: a filter on a base class finds a child's error too."""
    async with running_worker(proc_app, ["proc"], process_slots=1):
        lost = await process_jobs.read_file.enqueue(str(tmp_path / "nothing-here"))
        with pytest.raises(JobFailed):
            await lost.result(timeout=30)
    found = await proc_app.queue("proc").dead_letters.jobs(JobFilter(error_type="OSError"))
    assert [j.id for j in found] == [lost.id]
    assert found[0].error_types == ("FileNotFoundError", "OSError")


async def test_process_timeout_kills_and_replaces_the_child(proc_app: App) -> None:
    async with running_worker(proc_app, ["proc"], process_slots=1):
        first_pid = await (await process_jobs.whoami.enqueue()).result(timeout=30)
        start = time.monotonic()
        stuck = await process_jobs.hang.enqueue(60)
        with pytest.raises(JobFailed) as failed:
            await stuck.result(timeout=30)
        assert time.monotonic() - start < 10
        # The only slot's child was killed; the next job runs in a fresh one.
        next_pid = await (await process_jobs.whoami.enqueue()).result(timeout=30)
        quick = await process_jobs.hang.enqueue(0.01)
        assert await quick.result(timeout=30) == next_pid
    assert failed.value.error_type == "JobTimeout"
    assert next_pid != first_pid
    await wait_until(lambda: not _alive(first_pid), timeout=5, what="the killed child to exit")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); read its state.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def test_process_progress_and_logs_reach_redis(proc_app: App) -> None:
    async with running_worker(proc_app, ["proc"], process_slots=1):
        handle = await process_jobs.report_progress.enqueue(4)
        assert await handle.result(timeout=30) == "report_progress:proc"
    await wait_until(lambda: _progress(handle, 100), what="progress 100 from the child")
    lines = await handle.logs()
    assert len(lines) == 4
    assert lines[0].startswith("step 1 of 4 (attempt 1, pid ")
    assert str(os.getpid()) not in lines[0]


async def _progress(handle: object, value: int) -> bool:
    return bool(await handle.progress() == value)  # type: ignore[attr-defined]
