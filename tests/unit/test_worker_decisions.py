"""The worker's and the handles' decisions, against an in-memory engine (no server): what is
recorded for each outcome of an attempt, which backoff and timeout apply, how queues share
slots, what a handle makes of a job's end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from corral import (
    App,
    Fatal,
    Fixed,
    JobFailed,
    JobOverrides,
    RateLimited,
    ResultTimeout,
    Retry,
    RetryPolicy,
    Worker,
    WorkerStats,
)
from corral.handle import JobHandle
from corral.worker.outcomes import Recorder
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


async def burst(app: App, queues: list[str], **kw: object) -> WorkerStats:
    return await Worker(app, queues, burst=True, **kw).run()  # type: ignore[arg-type]


async def test_a_result_is_acknowledged_with_the_next_claim(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q")
    async def double(n: int) -> int:
        return n * 2

    job = fake.add("q", "double", '{"n": 21}')
    stats = await burst(app, ["q"])
    assert stats.completed == 1
    ((acknowledged,),) = fake.called("complete")
    assert acknowledged[0] == job.id and acknowledged[2] == "42"
    assert job.result == "42"


async def test_a_failure_retries_with_the_definitions_backoff(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(milliseconds=250))))
    async def flaky() -> None:
        raise ConnectionError("upstream down")

    job = fake.add("q", "flaky", "{}")
    stats = await burst(app, ["q"])
    ((job_id, error, delay, reason),) = fake.called("fail")
    assert (job_id, delay, reason) == (job.id, 250, "")
    assert (error.type, error.message, error.attempt) == ("ConnectionError", "upstream down", 1)
    assert "upstream down" in error.traceback
    assert (stats.retried, stats.dead) == (1, 0)


async def test_the_jobs_own_backoff_wins(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(seconds=1))))
    async def flaky() -> None:
        raise ValueError("no")

    fake.add("q", "flaky", "{}", overrides=JobOverrides(backoff=Fixed(timedelta(seconds=5))))
    await burst(app, ["q"])
    ((_, _, delay, _),) = fake.called("fail")
    assert delay == 5000


@pytest.mark.parametrize(
    ("exc", "attempt_before", "reason"),
    [(ValueError("bad"), 2, "exhausted"), (Fatal("never"), 0, "fatal")],
)
async def test_dead_when_attempts_run_out_or_fatal(
    app: App, fake: FakeEngine, exc: Exception, attempt_before: int, reason: str
) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=3))
    async def doomed() -> None:
        raise exc

    fake.add("q", "doomed", "{}", attempt=attempt_before)
    stats = await burst(app, ["q"])
    ((_, _, delay, why),) = fake.called("fail")
    assert (delay, why) == (None, reason)
    assert stats.dead_reasons == {reason: 1}


async def test_retry_and_rate_limited_reschedule_without_failing(
    app: App, fake: FakeEngine
) -> None:
    @app.job(queue="q")
    async def later(kind: str) -> None:
        if kind == "retry":
            raise Retry(delay=timedelta(seconds=2), message="429")
        raise RateLimited(delay=timedelta(seconds=3))

    fake.add("q", "later", '{"kind": "retry"}')
    fake.add("q", "later", '{"kind": "limited"}')
    stats = await burst(app, ["q"])
    calls = sorted(fake.called("reschedule"))
    assert [(delay, hold) for _, delay, _, hold in calls] == [(2000, 0), (0, 3000)]
    assert fake.called("fail") == []
    assert stats.rescheduled == 2


async def test_an_unknown_job_is_handed_back_with_the_grace(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q")
    async def known() -> None:
        return None

    job = fake.add("q", "from_a_newer_release", "{}")
    stats = await burst(app, ["q"], unknown_job_grace=timedelta(minutes=3))
    ((job_id, _, grace_ms, error),) = fake.called("defer")
    assert (job_id, grace_ms, error.type) == (job.id, 180_000, "UnknownJob")
    assert stats.deferred == 1 and fake.called("fail") == []


async def test_a_payload_that_no_longer_fits_is_dead_not_retried(
    app: App, fake: FakeEngine
) -> None:
    @app.job(queue="q")
    async def typed(n: int) -> None:
        return None

    fake.add("q", "typed", '{"n": "not a number"}')
    await burst(app, ["q"])
    ((_, error, delay, reason),) = fake.called("fail")
    assert (delay, reason, error.type) == (None, "invalid_payload", "InvalidPayload")
    assert "n:" in error.message


async def test_the_timeout_is_the_jobs_own_when_it_carries_one(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q", timeout=timedelta(milliseconds=50), retry=RetryPolicy(attempts=1))
    async def slow() -> str:
        await asyncio.sleep(0.2)
        return "done"

    timed = fake.add("q", "slow", "{}", max_attempts=1)
    free = fake.add("q", "slow", "{}", overrides=JobOverrides(timeout=None))  # no timeout
    await burst(app, ["q"])
    ((job_id, error, _, reason),) = fake.called("fail")
    assert (job_id, error.type, reason) == (timed.id, "JobTimeout", "exhausted")
    assert free.result == '"done"'


async def test_strict_order_asks_the_first_queue_for_every_slot(app: App, fake: FakeEngine) -> None:
    @app.job(queue="urgent")
    async def u() -> None:
        return None

    @app.job(queue="bulk")
    async def b() -> None:
        return None

    for _ in range(3):
        fake.add("urgent", "u", "{}")
        fake.add("bulk", "b", "{}")
    await burst(app, ["urgent", "bulk"], concurrency=12)
    claims = [(q, n) for m, q, n in fake.calls if m == "claim"]
    assert claims[0] == ("urgent", 4)  # a third of the concurrency, all to the first queue
    assert ("bulk", 1) in claims[1:3]  # what urgent left unclaimed, in the same pass


async def test_weights_share_a_pass_by_weight(app: App, fake: FakeEngine) -> None:
    @app.job(queue="high")
    async def h() -> None:
        return None

    @app.job(queue="low")
    async def lo() -> None:
        return None

    for _ in range(40):
        fake.add("high", "h", "{}")
        fake.add("low", "lo", "{}")
    await burst(app, ["high", "low"], concurrency=12, weights={"high": 3, "low": 1})
    first = [(q, n) for m, q, n in fake.calls if m == "claim"][:2]
    assert sorted(first) == [("high", 3), ("low", 1)]  # 4 slots, 3:1


async def test_a_handle_reports_death_and_decodes_results(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q", retry=RetryPolicy(attempts=1))
    async def maybe(fail: bool) -> list[int]:
        if fail:
            raise ValueError("broken input")
        return [1, 2]

    good = await maybe.enqueue(False)
    bad = await maybe.enqueue(True)
    async with asyncio.TaskGroup() as tg:
        tg.create_task(burst(app, ["q"]))
        assert await good.result(timeout=5) == [1, 2]
        with pytest.raises(JobFailed, match="broken input") as failed:
            await bad.result(timeout=5)
    assert (failed.value.reason, failed.value.error_type) == ("exhausted", "ValueError")


async def test_a_handle_times_out_waiting(app: App, fake: FakeEngine) -> None:
    fake.add("q", "nobody", "{}")
    handle: JobHandle[object] = JobHandle(app.client, "q", "j1", None)
    with pytest.raises(ResultTimeout):
        await handle.result(timeout=0.1)


async def test_acknowledgements_at_shutdown_outlast_an_outage(fake: FakeEngine) -> None:
    """Completed jobs acknowledged at shutdown while Redis is briefly unreachable are written
    once it is back; if it stays away (a forced stop), they stay pending, not dropped."""
    stats = WorkerStats()
    force = asyncio.Event()
    recorder = Recorder("w", stats, force, unknown_grace_ms=0)
    jobs = [fake.add("q", "n", "{}") for _ in range(3)]
    await fake.complete_and_claim("q", [], 3, "w", 60_000)
    recorder.done["q"] = [(j.id, j.token, "1") for j in jobs]

    fake.outages = 2
    await recorder.flush(fake)  # type: ignore[arg-type]
    assert stats.completed == 3 and not recorder.pending
    assert [j.result for j in jobs] == ["1", "1", "1"]
    assert len(fake.called("complete_unreachable")) == 2

    late = fake.add("q", "n", "{}")
    await fake.complete_and_claim("q", [], 1, "w", 60_000)
    recorder.done["q"] = [(late.id, late.token, "2")]
    fake.outages = 1_000
    force.set()  # a second Ctrl-C: no more waiting
    await recorder.flush(fake)  # type: ignore[arg-type]
    assert recorder.done == {"q": [(late.id, late.token, "2")]}
    assert late.result is None
