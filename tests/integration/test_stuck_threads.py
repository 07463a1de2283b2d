"""A thread-mode handler that never returns (a hung HTTP call) does not keep the worker alive:
after the grace period the worker hands the job back, abandons the thread and its process
exits; a second signal skips the grace period. Run as `corral worker` subprocesses, and as a
plain Python program calling ``Worker.run()``."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from corral import App, JobHandle, JobState, Settings, Worker
from corral.embedded import EmbeddedServer
from tests.integration._helpers import NO_RETRY, wait_state, wait_until
from tests.jobs import blocking_jobs

ROOT = Path(__file__).resolve().parents[2]
NOTICE = "shutting down (Ctrl-C again to force)"
HOUR = 3600.0


@pytest.fixture
async def blocking_app(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    application = blocking_jobs.app
    application.configure(Settings.from_url(server.url, prefix=prefix))
    async with application:
        yield application


@pytest.fixture
def env(server: EmbeddedServer, prefix: str) -> dict[str, str]:
    return {**os.environ, "CORRAL_REDIS_URL": server.url, "CORRAL_PREFIX": prefix}


@pytest.fixture
def spawn(env: dict[str, str]) -> Iterator[list[subprocess.Popen[str]]]:
    """Processes started by the test; any still running at the end is killed."""
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def start_worker(
    env: dict[str, str], procs: list[subprocess.Popen[str]], grace: float
) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "worker",
            "tests.jobs.blocking_jobs:app",
            "--grace",
            str(grace),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    procs.append(proc)
    return proc


async def wait_blocking(handle: JobHandle[str]) -> None:
    """Until the handler runs in its thread (it logs "blocking" first)."""

    async def logged() -> bool:
        return "blocking" in await handle.logs()

    await wait_until(logged, timeout=60, what="the handler to block in its thread")


def exit_within(proc: subprocess.Popen[str], seconds: float) -> tuple[int, str]:
    """The exit code and stderr of ``proc``; fails if it is still running after ``seconds``."""
    try:
        _, stderr = proc.communicate(timeout=seconds)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, stderr = proc.communicate()
        pytest.fail(f"still running {seconds}s after the signal; stderr:\n{stderr}")
    return proc.returncode, stderr


async def test_sigint_exits_after_the_grace_and_hands_the_job_back(
    blocking_app: App, env: dict[str, str], spawn: list[subprocess.Popen[str]]
) -> None:
    handle = await blocking_jobs.block.enqueue(HOUR)
    proc = start_worker(env, spawn, grace=1)
    await wait_blocking(handle)
    proc.send_signal(signal.SIGINT)
    code, stderr = exit_within(proc, 1 + 20)
    assert code == 0, stderr
    assert NOTICE in stderr
    assert "abandoning 1 handler thread" in stderr and handle.id in stderr
    assert "1 handed back" in stderr
    assert "Task was destroyed" not in stderr
    info = await handle.info()
    assert (info.state, info.attempt, info.errors) == (JobState.WAITING, 0, [])


async def test_a_second_signal_skips_a_long_grace(
    blocking_app: App, env: dict[str, str], spawn: list[subprocess.Popen[str]]
) -> None:
    handle = await blocking_jobs.block.enqueue(HOUR)
    proc = start_worker(env, spawn, grace=HOUR)
    await wait_blocking(handle)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    code, stderr = exit_within(proc, 20)
    assert code == 0, stderr
    assert stderr.count(NOTICE) == 1
    assert "Task was destroyed" not in stderr
    assert (await handle.info()).state == JobState.WAITING


async def test_a_cancelled_blocked_job_does_not_keep_the_worker_alive(
    blocking_app: App, env: dict[str, str], spawn: list[subprocess.Popen[str]]
) -> None:
    handle = await blocking_jobs.block.enqueue(HOUR)
    proc = start_worker(env, spawn, grace=HOUR)
    await wait_blocking(handle)
    await blocking_app.queue("blocking").cancel(handle.id)
    await wait_state(blocking_app, "blocking", handle.id, JobState.CANCELLED, timeout=30)
    proc.send_signal(signal.SIGTERM)
    # Nothing is running any more (as far as the worker is concerned): no grace to wait for.
    code, stderr = exit_within(proc, 20)
    assert code == 0, stderr
    assert NOTICE in stderr
    assert "Task was destroyed" not in stderr
    assert handle.id in stderr  # the abandoned thread is named
    assert (await handle.info()).state == JobState.CANCELLED


PROGRAM = """
import asyncio
from datetime import timedelta

from corral import Worker
from tests.jobs.blocking_jobs import app, block


async def main() -> None:
    async with app:
        handle = await block.enqueue(3600)
        worker = Worker(app, ["blocking"], grace=timedelta(seconds=1))
        run = asyncio.create_task(worker.run())
        while "blocking" not in await handle.logs():
            await asyncio.sleep(0.05)
        worker.stop()
        stats = await run
        print("run returned,", stats.released, "handed back", flush=True)


asyncio.run(main())
"""


async def test_a_program_calling_worker_run_can_exit(
    blocking_app: App, env: dict[str, str], spawn: list[subprocess.Popen[str]]
) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(PROGRAM)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    spawn.append(proc)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"the program did not exit; stdout: {out!r}\nstderr:\n{err}")
    assert proc.returncode == 0, err
    assert "run returned, 1 handed back" in out
    assert "Task was destroyed" not in err
    counts = await blocking_app.queue("blocking").counts()
    assert (counts.waiting, counts.active) == (1, 0)


async def test_a_job_waiting_for_a_free_thread_leaves_nothing_pending(app: App) -> None:
    """Every thread is held by a handler that timed out, and the next job waits for one when
    the worker stops: it is handed back, and nothing it waited with is left pending (a task
    collected while pending prints "Task was destroyed but it is pending!")."""
    reported: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _, context: reported.append(context))

    @app.job(queue="q", timeout=timedelta(milliseconds=300), retry=NO_RETRY)
    def hang(seconds: float) -> None:
        time.sleep(seconds)

    @app.job(queue="q")
    def after() -> str:
        return "ran"

    worker = Worker(app, ["q"], concurrency=1, grace=timedelta(milliseconds=500))  # 2 threads
    try:
        stuck = [await hang.enqueue(20) for _ in range(2)]
        run = asyncio.create_task(worker.run())
        for h in stuck:
            await wait_state(app, "q", h.id, JobState.DEAD, timeout=30)
        late = await after.enqueue()
        await wait_state(app, "q", late.id, JobState.ACTIVE, timeout=30)
        worker.stop()
        stats = await asyncio.wait_for(run, 30)
        gc.collect()
    finally:
        loop.set_exception_handler(None)
    assert stats.released == 1
    assert (await late.info()).state == JobState.WAITING
    assert [c["message"] for c in reported] == []


async def test_ctrl_c_at_the_terminal_gives_a_process_pool_its_grace(
    blocking_app: App, env: dict[str, str], spawn: list[subprocess.Popen[str]]
) -> None:
    """A terminal's Ctrl-C reaches every process of the foreground group; the children of
    `--processes 2` must see it once (through the parent), not twice (which means "force"):
    a job that ends within the grace completes instead of being handed back."""
    handle = await blocking_jobs.block.enqueue(3.0)
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "corral", "worker", "tests.jobs.blocking_jobs:app"),
            *("--processes", "2", "--grace", "60"),
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        process_group=0,  # a terminal's foreground group, of which the worker is the leader
    )
    spawn.append(proc)
    await wait_blocking(handle)
    os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole group
    code, stderr = exit_within(proc, 60)
    assert code == 0, stderr
    info = await handle.info()
    assert info.state == JobState.COMPLETED, (info.state, stderr)
