"""Fencing: a worker frozen (SIGSTOP) past its lease, whose jobs were re-leased to and finished
by another worker, cannot complete, fail or retry them once it is resumed (SIGCONT)."""

from __future__ import annotations

import asyncio
import signal
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from corral import App, Fixed, JobHandle, JobState, RetryPolicy, current_job
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from harness.chaos import Fleet
from tests.chaos._helpers import started, wait_until
from tests.jobs.chaos_jobs import work


async def test_stale_worker_cannot_complete_fail_or_retry(
    fresh_server: Callable[..., EmbeddedServer],
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
    trace_path: Path,
    tmp_path: Path,
) -> None:
    srv = fresh_server()
    await chaos_app(srv.url)
    gate = tmp_path / "gate"
    fleet = make_fleet(srv.url, lease_ms=1000, concurrency=3)
    outcomes: list[Literal["result", "failure", "retry"]] = ["result", "failure", "retry"]
    late_result, late_failure, late_retry = [
        await work.enqueue(n, stale_outcome=outcome) for n, outcome in enumerate(outcomes)
    ]
    handles = [late_result, late_failure, late_retry]
    stale = fleet.spawn(CHAOS_ROLE="stale", CHAOS_GATE=str(gate))
    await wait_until(lambda: bool(started(trace_path, stale.pid)), 20, what="a first job to start")
    await wait_until(_all_active(handles), 10, what="all three jobs leased to it")
    # Its event loop is blocked in the first handler; now freeze the whole process. The gate
    # opens, so once resumed the handlers finish at once with the outcome each one asks for.
    stale.send_signal(signal.SIGSTOP)
    gate.touch()
    fresh = fleet.spawn()
    try:
        # the leases run out, the fresh worker reaps and re-runs all three
        assert [await h.result(timeout=20) for h in handles] == [fresh.pid] * 3
    finally:
        stale.send_signal(signal.SIGCONT)

    log = ""

    def stale_logged_all() -> bool:
        nonlocal log
        log = fleet.log(stale)
        return "late result discarded" in log and (
            # a failure or retry is refused by its token; or, if the stale worker's heartbeat
            # ran first, it learns the lease is gone and drops the attempt itself
            _refused(log, late_failure.id, "failure not recorded")
            and _refused(log, late_retry.id, "retry not recorded")
        )

    await wait_until(stale_logged_all, 15, what="the stale worker to log its refusals")
    assert f"job {late_result.id}: late result discarded" in log
    for h in handles:  # nothing the stale worker did reached the jobs
        info = await h.info()
        assert info.state == JobState.COMPLETED
        assert info.result == fresh.pid
        assert info.errors == []
        assert (info.attempt, info.stalls, info.reschedules) == (1, 1, 0)
    assert stale.poll() is None  # and it keeps serving
    fleet.kill(fresh, signal.SIGTERM)
    fresh.wait(20)
    assert await (await work.enqueue(9)).result(timeout=20) == stale.pid


def _all_active(handles: list[JobHandle[int]]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return all([await h.state() == JobState.ACTIVE for h in handles])

    return check


def _refused(log: str, job_id: str, message: str) -> bool:
    return f"job {job_id}: {message}" in log or f"job {job_id}: lease lost" in log


async def test_stale_heartbeat_reply_does_not_cancel_the_next_attempt(
    fresh_server: Callable[..., EmbeddedServer],
) -> None:
    """A heartbeat sent for attempt 1 comes back "lost" after the job failed, was retried and
    claimed again by the same worker: attempt 2 (a new token) must not be cancelled."""
    srv = fresh_server()
    app = App.from_url(srv.url, prefix="hb" + uuid.uuid4().hex[:8], lease=timedelta(seconds=1))
    runs: list[int] = []
    second_started = asyncio.Event()

    @app.job(queue="q", retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(0))))
    async def flaky() -> int:
        attempt = current_job().attempt
        runs.append(attempt)
        if attempt == 1:
            await asyncio.sleep(0.5)  # a heartbeat goes out meanwhile (every 1/3 s)
            raise RuntimeError("first attempt fails")
        second_started.set()
        await asyncio.sleep(0.8)
        return attempt

    async with app:
        engine = await app.engine()
        real_heartbeat = engine.heartbeat
        delayed = 0

        async def slow_heartbeat(queue: str, lease_ms: int, items: Any) -> Any:
            nonlocal delayed
            if not delayed and items and not second_started.is_set():
                delayed += 1  # this reply is late: it arrives once attempt 2 runs
                await asyncio.wait_for(second_started.wait(), 10)
            return await real_heartbeat(queue, lease_ms, items)

        engine.heartbeat = slow_heartbeat  # type: ignore[method-assign]
        handle = await flaky.enqueue()
        async with running_worker(app, ["q"], concurrency=1):
            assert await handle.result(timeout=20) == 2
        info = await handle.info()
    assert delayed == 1
    assert runs == [1, 2]  # attempt 2 ran once, to its end
    assert (info.attempt, info.stalls) == (2, 0)
