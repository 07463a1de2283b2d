"""Per-job-name concurrency inside one worker (issue 13, seed 004's ``process(type, n, fn)``),
against the in-memory engine: at most N of a name run at once, the others wait their turn in
the worker (their timeout not started), and shutdown hands back the ones still waiting."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from corral import App, ConfigError, Worker, current_job
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


class Gauge:
    def __init__(self) -> None:
        self.now = 0
        self.peak: dict[str, int] = {}

    async def hold(self, name: str, seconds: float) -> None:
        self.now += 1
        self.peak[name] = max(self.peak.get(name, 0), self.now)
        try:
            await asyncio.sleep(seconds)
        finally:
            self.now -= 1


async def test_at_most_n_of_a_name_run_at_once(app: App, fake: FakeEngine) -> None:
    emails, exports = Gauge(), Gauge()

    @app.job(queue="q", concurrency=2)
    async def send_email() -> None:
        await emails.hold("send_email", 0.05)

    @app.job(queue="q")
    async def export() -> None:
        await exports.hold("export", 0.05)

    for _ in range(8):
        fake.add("q", "send_email", "{}")
        fake.add("q", "export", "{}")
    worker = Worker(app, ["q"], concurrency=16, burst=True)
    assert worker.limits.limits == {"send_email": 2}
    stats = await worker.run()
    assert stats.completed == 16
    assert emails.peak["send_email"] == 2
    assert exports.peak["export"] > 2  # unlimited names are not held back


async def test_the_workers_limits_win_over_the_definitions(app: App, fake: FakeEngine) -> None:
    gauge = Gauge()

    @app.job(queue="q", concurrency=5)
    def report() -> None:  # thread mode: the limit applies before the thread is taken
        asyncio.run(gauge.hold("report", 0.05))

    for _ in range(6):
        fake.add("q", "report", "{}")
    stats = await Worker(app, ["q"], concurrency=6, limits={"report": 1}, burst=True).run()
    assert stats.completed == 6
    assert gauge.peak["report"] == 1


async def test_the_timeout_starts_when_the_handler_does(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q", concurrency=1, timeout=timedelta(milliseconds=300))
    async def step() -> None:
        await asyncio.sleep(0.15)  # five in a row: the last waits 0.6 s, longer than its timeout

    for _ in range(5):
        fake.add("q", "step", "{}")
    stats = await Worker(app, ["q"], concurrency=5, burst=True).run()
    assert stats.completed == 5
    assert fake.called("fail") == []


def test_limits_must_name_known_jobs_with_positive_numbers(app: App) -> None:
    @app.job(queue="q")
    async def known() -> None: ...

    with pytest.raises(ConfigError, match=r"does not define: typo \(known: known\)"):
        Worker(app, ["q"], limits={"typo": 2})
    with pytest.raises(ConfigError, match="at least 1"):
        Worker(app, ["q"], limits={"known": 0})
    with pytest.raises(ConfigError, match="at least 1"):
        app.job(queue="q", name="other", concurrency=0)(known.fn)


async def test_shutdown_hands_back_the_jobs_still_waiting_their_turn(
    app: App, fake: FakeEngine
) -> None:
    started: list[str] = []
    release = asyncio.Event()

    @app.job(queue="q", concurrency=1)
    async def slow() -> None:
        started.append(current_job().id)
        await release.wait()

    jobs = [fake.add("q", "slow", "{}") for _ in range(4)]
    worker = Worker(app, ["q"], concurrency=4, grace=timedelta(seconds=5))
    task = asyncio.create_task(worker.run())
    while len(started) < 1 or worker.running < 4:
        await asyncio.sleep(0.01)
    worker.stop()
    while not fake.called("release"):
        await asyncio.sleep(0.01)
    (items,) = fake.called("release")
    handed_back = [job_id for job_id, _ in items]
    assert handed_back == [j.id for j in jobs[1:]]  # at once, not after the grace period
    assert started == [jobs[0].id]
    release.set()  # the running one finishes within the grace period
    stats = await task
    assert (stats.completed, stats.released) == (1, 3)
