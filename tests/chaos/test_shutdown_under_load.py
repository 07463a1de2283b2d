"""Graceful shutdown under load: SIGTERM to two worker processes with 100 jobs in flight (async
and thread-mode, some shorter and some longer than the grace period). Each job completes or is
handed back to waiting; none is lost, none is counted as a failure."""

from __future__ import annotations

import random
import re
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

from corral import App, JobHandle, JobState
from corral.embedded import EmbeddedServer
from harness.chaos import Fleet
from tests.chaos._helpers import started, wait_serving, wait_until
from tests.jobs.chaos_jobs import work, work_in_thread

GRACE_S = 1.0
STOPPED = r"worker stopped: (\d+) completed, (\d+) dead, (\d+) handed back"


async def test_sigterm_with_100_jobs_in_flight(
    fresh_server: Callable[..., EmbeddedServer],
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
    trace_path: Path,
) -> None:
    srv = fresh_server()
    app = await chaos_app(srv.url)
    fleet = make_fleet(srv.url, lease_ms=10_000, concurrency=50, args=["--grace", str(GRACE_S)])
    rng = random.Random(6)
    # Both workers serve before anything is enqueued: one started late would find the short jobs
    # done and take the waiting ones instead.
    workers = [fleet.spawn() for _ in range(2)]
    await wait_serving(fleet, *workers)
    # 100 to be in flight: 80 async, 20 in threads; about half finish within the grace period;
    # 50 more behind them, enqueued in the same call so they can only come after
    calls = [work.prepare(n, ms=rng.choice([rng.randint(200, 600), 2000])) for n in range(80)]
    calls += [work_in_thread.prepare(n, ms=rng.choice([300, 2000])) for n in range(80, 100)]
    calls += [work.prepare(n) for n in range(100, 150)]
    stored = await app.enqueue_many(calls)
    handles: list[JobHandle[int]] = stored[:100]
    waiting = stored[100:]
    await wait_until(lambda: len(started(trace_path)) >= 100, 30, what="100 jobs in flight")
    assert (await app.queue("chaos").counts()).active == 100

    for w in workers:
        w.send_signal(signal.SIGTERM)
    for w in workers:
        assert w.wait(30) == 0, fleet.log(w)

    states = [(await h.info()).state for h in handles]
    completed = states.count(JobState.COMPLETED)
    handed_back = states.count(JobState.WAITING)
    assert completed + handed_back == 100, states
    assert 0 < completed < 100 and handed_back > 0  # both kinds happened
    counts = await app.queue("chaos").counts()
    assert (counts.active, counts.dead, counts.waiting) == (0, 0, handed_back + len(waiting))
    for h in handles + waiting:
        info = await h.info()
        assert info.errors == []  # no attempt counted as failed
        if info.state == JobState.WAITING:
            assert info.attempt == 0  # handing back does not use up an attempt
    totals = [0, 0, 0]
    for w in workers:
        m = re.search(STOPPED, fleet.log(w))
        assert m, fleet.log(w)
        totals = [t + int(x) for t, x in zip(totals, m.groups(), strict=True)]
    assert totals == [completed, 0, handed_back]

    # a new worker finishes everything
    fleet.spawn()
    for h in handles + waiting:
        await h.result(timeout=30)
    for h in handles:
        assert (await h.info()).attempt == 1
