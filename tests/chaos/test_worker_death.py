"""A worker process SIGKILLed mid-job: its jobs come back once their lease runs out and run on
another worker; a job whose workers keep dying ends dead with reason "stalled".

Leases are 1 s here (``CORRAL_LEASE_MS=1000``); the reaper in every worker runs once per lease.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from corral import App, JobFailed, JobState
from corral.embedded import EmbeddedServer
from harness.chaos import Fleet
from tests.chaos._helpers import started, wait_serving, wait_until
from tests.jobs.chaos_jobs import work

LEASE_MS = 1000


async def test_killed_workers_jobs_run_again_on_another_worker(
    fresh_server: Callable[..., EmbeddedServer],
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
    trace_path: Path,
) -> None:
    srv = fresh_server()
    app = await chaos_app(srv.url)
    fleet = make_fleet(srv.url, lease_ms=LEASE_MS, concurrency=4)
    victim = fleet.spawn(CHAOS_ROLE="victim")
    handles = [await work.enqueue(n) for n in range(4)]
    await wait_until(lambda: len(started(trace_path, victim.pid)) == 4, 20, what="4 jobs running")
    rescuer = fleet.spawn()
    await wait_serving(fleet, rescuer)

    fleet.kill(victim)
    killed_at = time.monotonic()
    assert [await h.state() for h in handles] == [JobState.ACTIVE] * 4  # leased to the dead one
    await wait_until(lambda: len(started(trace_path, rescuer.pid)) == 4, 20, what="the re-runs")
    recovered_in = time.monotonic() - killed_at

    assert [await h.result(timeout=10) for h in handles] == [rescuer.pid] * 4
    # back within one lease plus one reaper pass (plus slack for a loaded machine)
    assert recovered_in < (2 * LEASE_MS) / 1000 + 2.0, recovered_in
    for h in handles:
        info = await h.info()
        # back to waiting once (a stall), the attempt not counted, no error recorded
        assert (info.stalls, info.attempt, info.errors) == (1, 1, [])
    counts = await app.queue("chaos").counts()
    assert (counts.active, counts.waiting, counts.completed) == (0, 0, 4)


async def test_job_is_dead_stalled_after_max_stalls(
    fresh_server: Callable[..., EmbeddedServer],
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
    trace_path: Path,
) -> None:
    max_stalls = 2  # survives two stalls (the default is 1), dead on the third
    srv = fresh_server()
    await chaos_app(srv.url)
    fleet = make_fleet(srv.url, lease_ms=LEASE_MS, concurrency=1)
    handle = await work.with_options(max_stalls=max_stalls).enqueue(1)
    # Each victim reaps the previous victim's expired lease, runs the job, and is killed.
    for round_ in range(max_stalls + 1):
        victim = fleet.spawn(CHAOS_ROLE="victim")

        def running(pid: int = victim.pid) -> bool:
            return handle.id in started(trace_path, pid)

        await wait_until(running, 20, what=f"run {round_}")
        fleet.kill(victim)
    fleet.spawn()  # a healthy worker finds the last lease expired: one stall too many
    with pytest.raises(JobFailed) as failed:
        await handle.result(timeout=20)

    assert failed.value.reason == "stalled"
    assert failed.value.error_type == "Stalled"
    info = await handle.info()
    assert info.state == JobState.DEAD
    assert info.stalls == max_stalls + 1
    assert "worker died or froze" in (info.last_error.message if info.last_error else "")
    assert len(started(trace_path)) == max_stalls + 1  # never run by the healthy worker
