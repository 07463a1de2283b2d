"""Tiers served by two real `corral worker` processes: weights hold at any concurrency, and
strict order is strict (issue 11, items 2 and 3).

Every queue is backlogged before the workers start; the order of completions (and starts) comes
from the job hashes, stamped by the server's clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from corral import App, JobSummary, Settings
from corral.embedded import EmbeddedServer
from tests.integration._helpers import wait_until
from tests.jobs import tier_jobs

ROOT = Path(__file__).resolve().parents[2]
WEIGHTS = {"critical": 8, "high": 4, "standard": 2, "low": 1}


@pytest.fixture
async def tapp(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    app = tier_jobs.app
    app.client.forget()  # a previous test's loop is gone
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


@contextmanager
def workers(server: EmbeddedServer, prefix: str, args: list[str]) -> Iterator[None]:
    env = {**os.environ, "CORRAL_REDIS_URL": server.url, "CORRAL_PREFIX": prefix}
    cmd = [sys.executable, "-m", "corral", "worker", "tests.jobs.tier_jobs:app", *args]
    # Their logs go to files: a pipe nobody reads fills up (a line per job) and blocks them.
    with ExitStack() as files:
        logs = [files.enter_context(tempfile.TemporaryFile()) for _ in range(2)]
        procs = [
            subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=log)
            for log in logs
        ]
        try:
            yield
        finally:
            for p in procs:
                p.send_signal(signal.SIGTERM)
            for p, log in zip(procs, logs, strict=True):
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
                log.seek(0)
                err = log.read().decode()
                assert "Traceback" not in err, err


async def backlog(app: App, queues: list[str], per_queue: int) -> None:
    for queue in queues:
        fn = app.registry[f"work_{queue}"]
        for start in range(0, per_queue, 500):
            await app.enqueue_many([fn.prepare(n) for n in range(start, start + 500)])


async def finished(app: App, queues: list[str]) -> list[JobSummary]:
    jobs: list[JobSummary] = []
    for queue in queues:
        jobs += await app.queue(queue).jobs("completed", limit=5000)
    return jobs


async def wait_all_done(app: App, queues: list[str], total: int, timeout: float) -> None:
    async def done() -> bool:
        counts = [await app.queue(q).counts() for q in queues]
        return sum(c.completed for c in counts) >= total

    await wait_until(done, timeout, interval=0.2, what=f"{total} jobs to complete")


@pytest.mark.parametrize("concurrency", [10, 50])
async def test_weighted_tiers_follow_their_weights(
    tapp: App, server: EmbeddedServer, prefix: str, concurrency: int
) -> None:
    queues = list(WEIGHTS)
    per_queue = 600
    await backlog(tapp, queues, per_queue)
    args = ["-c", str(concurrency)]
    for queue, weight in WEIGHTS.items():
        args += ["-q", queue, "-w", f"{queue}={weight}"]
    with workers(server, prefix, args):
        await wait_all_done(tapp, queues, per_queue * len(queues), 120)
    jobs = sorted(await finished(tapp, queues), key=lambda j: (j.finished_at, j.id))
    by_id_queue = {j.id: j.name.removeprefix("work_") for j in jobs}
    # While every tier is backlogged: the first 1,000 completions (critical, at 8/15, has 600
    # jobs: it empties after ~1,125), past the first 100 (workers starting at different times).
    window = [by_id_queue[j.id] for j in jobs[100:1000]]
    shares = Counter(window)
    total = sum(WEIGHTS.values())
    for queue, weight in WEIGHTS.items():
        expected = weight / total
        got = shares[queue] / len(window)
        assert abs(got - expected) <= 0.03, (queue, round(got, 3), round(expected, 3), shares)


async def test_strict_order_serves_later_queues_only_when_earlier_are_empty(
    tapp: App, server: EmbeddedServer, prefix: str
) -> None:
    per_queue = 500
    await backlog(tapp, ["urgent", "bulk"], per_queue)
    with workers(server, prefix, ["-c", "20", "-q", "urgent", "-q", "bulk"]):
        await wait_all_done(tapp, ["urgent", "bulk"], 2 * per_queue, 120)
    urgent = await finished(tapp, ["urgent"])
    bulk = await finished(tapp, ["bulk"])
    last_urgent_start = max(j.started_at for j in urgent if j.started_at)
    early = [j for j in bulk if j.started_at and j.started_at < last_urgent_start]
    assert not early, f"{len(early)} bulk jobs started while urgent still had waiting jobs"
