"""Lifecycle hooks (issue 14): run in the worker after the outcome is recorded, never change
it; a hook that raises or hangs is logged, counted and bounded; startup before the first claim,
shutdown after the last outcome. Against a real server, and with two worker processes."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, Fixed, JobEvent, JobState, Retry, RetryPolicy, current_job
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._helpers import wait_until

FAST = RetryPolicy(attempts=2, backoff=Fixed(timedelta(milliseconds=10)))


async def test_job_hooks_see_each_recorded_outcome(make_app: Callable[..., App]) -> None:
    app = make_app()
    seen: list[tuple[str, str, JobEvent]] = []
    states: dict[str, JobState] = {}

    @app.job(queue="q", retry=FAST)
    async def order(n: int) -> dict[str, int]:
        if n < 0:
            raise ValueError(f"bad order {n}")
        return {"n": n}

    @app.on_complete
    async def completed(event: JobEvent) -> None:
        seen.append(("complete", event.job_id, event))
        states[event.job_id] = (await app.get_job(event.queue, event.job_id)).state

    @app.on_failure
    def failed(event: JobEvent) -> None:  # a plain function: it runs in a thread
        assert threading.current_thread() is not threading.main_thread()
        seen.append(("failure", event.job_id, event))

    @app.on_dead
    async def dead(event: JobEvent) -> None:
        seen.append(("dead", event.job_id, event))

    async with app:
        good = await order.enqueue(7)
        bad = await order.enqueue(-1)
        async with running_worker(app, ["q"]):
            await wait_until(lambda: len(seen) == 4, what="four hook calls")
    kinds = sorted((k, i) for k, i, _ in seen)
    assert kinds == sorted(
        [("complete", good.id), ("failure", bad.id), ("failure", bad.id), ("dead", bad.id)]
    )
    done = next(e for k, _, e in seen if k == "complete")
    assert (done.outcome, done.result, done.attempt, done.queue, done.name) == (
        "completed", {"n": 7}, 1, "q", "order",
    )  # fmt: skip
    assert done.duration >= timedelta(0) and done.error is None
    assert states[good.id] == JobState.COMPLETED  # recorded before the hook ran
    failures = sorted((e for k, _, e in seen if k == "failure"), key=lambda e: e.attempt)
    assert [(e.attempt, e.will_retry) for e in failures] == [(1, True), (2, False)]
    assert failures[0].error is not None and failures[0].error.message == "bad order -1"
    last = next(e for k, _, e in seen if k == "dead")
    assert (last.outcome, last.dead_reason) == ("dead", "exhausted")


async def test_a_hook_that_raises_or_hangs_changes_nothing(
    make_app: Callable[..., App], caplog: pytest.LogCaptureFixture
) -> None:
    app = make_app()
    app.hooks.timeout = timedelta(milliseconds=300)
    ran: list[int] = []

    @app.job(queue="q")
    async def work(n: int) -> int:
        ran.append(n)
        return n

    @app.on_complete
    async def explode(event: JobEvent) -> None:
        raise RuntimeError("the hook is broken")

    @app.on_complete
    async def hang(event: JobEvent) -> None:
        await asyncio.sleep(3600)

    async with app:
        handles = [await work.enqueue(n) for n in range(5)]
        with caplog.at_level(logging.ERROR, logger="corral"):
            async with running_worker(app, ["q"]) as worker:
                for h in handles:
                    assert await h.result(timeout=10) in range(5)
                await wait_until(lambda: worker.stats.hook_errors == 10, what="10 hook errors")
        assert sorted(ran) == list(range(5))
        assert worker.stats.completed == 5 and worker.stats.dead == 0
    messages = [r.getMessage() for r in caplog.records]
    assert sum("<locals>.explode " in m for m in messages) == 5
    assert sum("<locals>.hang " in m for m in messages) == 5
    assert any("longer than 0.3s" in (r.exc_text or "") for r in caplog.records)


async def test_plain_hooks_that_hang_do_not_starve_later_ones(
    make_app: Callable[..., App],
) -> None:
    """Plain hooks run in a few threads; hung ones (more of them than threads) are given up
    at the timeout and the later hooks, on_shutdown included, still run."""
    app = make_app()
    app.hooks.timeout = timedelta(milliseconds=200)
    release = threading.Event()
    noted: list[str] = []

    @app.job(queue="q")
    async def work(n: int) -> int:
        return n

    @app.on_complete
    def hang_or_note(event: JobEvent) -> None:
        if event.result < 6:
            release.wait()  # hangs until the test ends
        noted.append(f"complete {event.result}")

    @app.on_shutdown
    def closing() -> None:
        noted.append("shutdown")

    try:
        async with app, running_worker(app, ["q"]) as worker:
            for n in range(6):
                await (await work.enqueue(n)).result(timeout=10)
            await wait_until(lambda: worker.stats.hook_errors == 6, what="6 hung hooks")
            later = [await work.enqueue(n) for n in (6, 7)]
            for h in later:
                await h.result(timeout=10)
            await wait_until(lambda: len(noted) == 2, what="the later hooks")
        assert sorted(noted) == ["complete 6", "complete 7", "shutdown"]
    finally:
        release.set()


async def test_startup_before_the_first_job_and_shutdown_after_the_last(
    make_app: Callable[..., App],
) -> None:
    app = make_app()
    events: list[str] = []

    @app.on_startup
    async def open_pool() -> None:
        events.append("startup")

    @app.on_shutdown
    def close_pool() -> None:
        events.append("shutdown")

    @app.job(queue="q")
    async def work() -> None:
        events.append("job")

    async with app:
        await work.enqueue()
        async with running_worker(app, ["q"]):
            await wait_until(lambda: "job" in events, what="the job")
    assert events == ["startup", "job", "shutdown"]


HOOKED_APP = """
import os
from corral import App
app = App.from_env()
LOG = os.environ["HOOK_LOG"]

def note(line):
    with open(LOG, "a") as f:
        f.write(line + "\\n")

@app.on_startup
def started():
    note(f"startup {os.getpid()}")

@app.on_shutdown
async def stopped():
    note(f"shutdown {os.getpid()}")

@app.on_complete
def completed(event):
    note(f"complete {event.job_id} {event.result}")

@app.job(queue="hooked")
async def square(n: int) -> int:
    return n * n
"""


async def test_two_worker_processes_call_each_jobs_hook_once(
    server: EmbeddedServer, prefix: str, tmp_path: Path
) -> None:
    (tmp_path / "hooked.py").write_text(HOOKED_APP)
    log = tmp_path / "hooks.log"
    env = {**os.environ, "CORRAL_REDIS_URL": server.url, "CORRAL_PREFIX": prefix,
           "HOOK_LOG": str(log), "PYTHONPATH": str(tmp_path)}  # fmt: skip
    enqueue = "from hooked import app, square\nimport corral\n" + (
        "async def main():\n    async with app:\n"
        "        await app.enqueue_many([square.prepare(n) for n in range(200)])\n"
        "corral.run(main())\n"
    )
    subprocess.run([sys.executable, "-c", enqueue], env=env, check=True, cwd=tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "worker", "hooked:app", "--processes", "2", "--burst",
         "-c", "20", "--log-level", "warning"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = log.read_text().splitlines()
    completes = [line.split() for line in lines if line.startswith("complete")]
    assert len(completes) == 200
    assert len({c[1] for c in completes}) == 200  # each job's hook once
    assert sorted(int(c[2]) for c in completes) == sorted(n * n for n in range(200))
    starts = [line for line in lines if line.startswith("startup")]
    stops = [line for line in lines if line.startswith("shutdown")]
    assert len(starts) == len(stops) == 2
    assert {s.split()[1] for s in starts} == {s.split()[1] for s in stops}  # the same processes


@pytest.mark.parametrize("ending", ["raises", "retry"])
async def test_a_job_cancelled_as_it_fails_is_reported_cancelled(
    make_app: Callable[..., App], ending: str
) -> None:
    """Its cancellation is asked while it runs, and before the worker hears of it the handler
    fails (or asks to run later): the job ends cancelled, and the worker says so (not
    'retried', not 'dead'), to its counters and to its hooks."""
    app = make_app()
    seen: list[str] = []

    @app.job(queue="q", retry=FAST)
    async def doomed() -> None:
        job = current_job()
        await app.queue("q").cancel(job.id, reason="wrong customer")
        if ending == "retry":
            raise Retry(delay=timedelta(seconds=1))
        raise ValueError("failing anyway")

    @app.on_failure
    async def failed(event: JobEvent) -> None:
        seen.append(f"failure {event.outcome}")

    @app.on_dead
    async def dead(event: JobEvent) -> None:
        seen.append("dead")

    async with app:
        handle = await doomed.enqueue()
        async with running_worker(app, ["q"]) as worker:
            try:
                await wait_until(lambda: worker.stats.cancelled == 1, what="the cancellation")
            except AssertionError:
                print("DEBUG", worker.stats, await handle.info())
                raise
            info = await handle.info()
        assert info.state == JobState.CANCELLED
        assert (worker.stats.retried, worker.stats.rescheduled, worker.stats.dead) == (0, 0, 0)
        assert seen == []  # neither a failed attempt that will run again nor a dead job


async def test_a_job_that_dies_stalled_reaches_on_dead_once(
    make_app: Callable[..., App],
) -> None:
    """Its worker vanished holding it (here: a claim with no worker behind it) and it may not
    stall again: the worker that reaps it calls on_dead, once, with reason ``stalled``."""
    app = make_app()
    deaths: list[JobEvent] = []

    @app.job(queue="q", max_stalls=0)
    async def fragile() -> None: ...

    @app.on_dead
    async def dead(event: JobEvent) -> None:
        deaths.append(event)

    async with app:
        handle = await fragile.enqueue()
        engine = await app.engine()
        _, claimed = await engine.complete_and_claim("q", [], 1, "ghost", 200)
        assert claimed is not None and [j.id for j in claimed.jobs] == [handle.id]
        async with running_worker(app, ["q"]), running_worker(app, ["q"]):
            await wait_until(lambda: len(deaths) == 1, what="the stalled death")
            await asyncio.sleep(0.5)  # both workers reap: still only one call
    assert len(deaths) == 1
    (event,) = deaths
    assert (event.job_id, event.name, event.dead_reason, event.worker) == (
        handle.id, "fragile", "stalled", "ghost",
    )  # fmt: skip
