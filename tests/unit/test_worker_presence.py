"""What a worker says about itself, against the in-memory engine: it registers before it claims,
its heartbeats rewrite its entry with the jobs it is running, it removes the entry when it
exits, and it is ``ready`` once a first claim went through."""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from corral import App, Worker
from tests.unit.fake_engine import FakeEngine


@pytest.fixture
async def app() -> AsyncIterator[App]:
    application = App.from_url("redis://127.0.0.1:1/0")  # never reached: the fake answers
    yield application
    await application.close()


@pytest.fixture
async def fake(app: App) -> FakeEngine:
    engine = FakeEngine()
    app.client.use(engine)  # type: ignore[arg-type]
    return engine


async def test_registered_before_claiming_and_removed_at_exit(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q")
    async def noop() -> None:
        return None

    fake.add("q", "noop", "{}")
    worker = Worker(app, ["q", "other"], concurrency=4, burst=True)
    assert not worker.ready.is_set()
    await worker.run()
    assert worker.ready.is_set()

    methods = [m for m, _, _ in fake.calls]
    assert methods[0] == "register_worker" and methods[-1] == "unregister_worker"
    assert methods.index("register_worker") < methods.index("claim")
    info = fake.called("register_worker")[0]
    assert info.id == worker.id == f"{socket.gethostname()}:{os.getpid()}:{worker.id[-6:]}"
    assert (info.host, info.pid, info.queues, info.concurrency) == (
        socket.gethostname(),
        os.getpid(),
        ("q", "other"),
        4,
    )
    assert info.started_at is not None and info.version
    assert fake.called("unregister_worker") == [worker.id]
    assert fake.workers == {}


async def test_heartbeats_rewrite_the_entry_with_the_running_jobs(
    app: App, fake: FakeEngine
) -> None:
    release = asyncio.Event()

    @app.job(queue="q")
    async def wait() -> None:
        await release.wait()

    job = fake.add("q", "wait", "{}")
    worker = Worker(app, ["q"], lease=timedelta(milliseconds=300))  # heartbeats every 100 ms
    task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.ready.wait(), 5)
    for _ in range(100):
        if fake.workers.get(worker.id) and fake.workers[worker.id].jobs:
            break
        await asyncio.sleep(0.02)
    entry = fake.workers[worker.id]
    assert (entry.running, entry.jobs, entry.heartbeat) == (
        1,
        (job.id,),
        timedelta(milliseconds=100),
    )
    release.set()
    worker.stop()
    await asyncio.wait_for(task, 5)
    assert worker.id not in fake.workers
