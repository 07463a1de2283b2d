"""Poison jobs: whatever a job hash holds, the worker sends it to the dead set with a readable
reason and keeps serving."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import pytest
import redis

from corral import App, JobFailed, JobState, Settings
from corral.definition import PreparedJob
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._helpers import NO_RETRY, wait_state
from tests.jobs import process_jobs


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("str() of this exception fails")


class VeryUnprintable(Unprintable):
    def __repr__(self) -> str:
        raise RuntimeError("repr() fails too")


def with_payload(prepared: PreparedJob[object], payload: str) -> PreparedJob[object]:
    """The same job with a payload written by hand (as an old producer or a bug would)."""
    return dataclasses.replace(prepared, new=dataclasses.replace(prepared.new, payload=payload))


@pytest.fixture
async def proc_app(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    app = process_jobs.app
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


async def test_unknown_job_name(make_app: Callable[..., App]) -> None:
    producer = make_app()
    consumer = make_app()

    @producer.job(queue="q")
    async def only_in_producer(n: int) -> int:
        return n

    @consumer.job(queue="q")
    async def known() -> str:
        return "known"

    async with producer, consumer:
        handle = await only_in_producer.enqueue(1)
        grace = timedelta(milliseconds=300)  # handed back until then (rolling deploys)
        async with running_worker(consumer, ["q"], unknown_job_grace=grace) as worker:
            with pytest.raises(JobFailed) as failed:
                await handle.result(timeout=10)
            assert await (await known.enqueue()).result(timeout=10) == "known"
        info = await handle.info()

    assert failed.value.reason == "unknown_job"
    assert failed.value.error_type == "UnknownJob"
    assert "only_in_producer" in (failed.value.error_message or "")
    assert info.attempt == 0 and len(info.errors) == 1  # it never ran
    assert worker.stats.dead_reasons == {"unknown_job": 1}


async def test_payload_invalid_at_worker_time(app: App) -> None:
    @app.job(queue="q")
    async def resize(width: int) -> int:
        return width

    stale = with_payload(resize.prepare(10), '{"width": "wide"}')
    extra = with_payload(resize.prepare(10), '{"width": 1, "height": 2}')
    not_json = with_payload(resize.prepare(10), "{not json")
    handles = await app.enqueue_many([stale, extra, not_json])
    async with running_worker(app, ["q"]) as worker:
        for h in handles:
            with pytest.raises(JobFailed) as failed:
                await h.result(timeout=10)
            assert failed.value.reason == "invalid_payload"
            assert failed.value.error_type == "InvalidPayload"
        assert await (await resize.enqueue(3)).result(timeout=10) == 3

    first = await handles[0].info()
    assert "width" in first.errors[0].message
    assert first.attempt == 1  # not retried: running it again cannot help
    assert "height" in (await handles[1].info()).errors[0].message
    assert worker.stats.dead_reasons == {"invalid_payload": 3}


async def test_payload_model_changed_between_enqueue_and_run(
    make_app: Callable[..., App],
) -> None:
    old, new = make_app(), make_app()

    @old.job(queue="q", name="thumbnail")
    async def thumbnail_v1(width: int) -> None: ...

    @new.job(queue="q", name="thumbnail")
    async def thumbnail_v2(width: int, height: int) -> str:
        return f"{width}x{height}"

    async with old, new:
        handle = await thumbnail_v1.enqueue(100)
        async with running_worker(new, ["q"]):
            with pytest.raises(JobFailed) as failed:
                await handle.result(timeout=10)
            ok = await thumbnail_v2.enqueue(1, 2)
            assert await ok.result(timeout=10) == "1x2"
    assert failed.value.reason == "invalid_payload"
    assert "height" in (failed.value.error_message or "")


async def test_invalid_payload_in_process_mode(proc_app: App) -> None:
    bad = with_payload(process_jobs.count_to.prepare(1), '{"n": "not a number"}')
    (handle,) = await proc_app.enqueue_many([bad])
    async with running_worker(proc_app, ["proc"], process_slots=1):
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=30)
        assert await (await process_jobs.count_to.enqueue(4)).result(timeout=30) == 4
    assert failed.value.reason == "invalid_payload"
    assert "n" in (failed.value.error_message or "")


@pytest.mark.parametrize("cls", [Unprintable, VeryUnprintable])
async def test_exception_that_cannot_be_printed(app: App, cls: type[Exception]) -> None:
    @app.job(queue="q", retry=NO_RETRY)
    async def in_loop() -> None:
        raise cls("hidden")

    @app.job(queue="q", retry=NO_RETRY)
    def in_thread() -> None:
        raise cls("hidden")

    @app.job(queue="q")
    async def healthy() -> str:
        return "fine"

    async with running_worker(app, ["q"]) as worker:
        handles = [await in_loop.enqueue(), await in_thread.enqueue()]
        for h in handles:
            with pytest.raises(JobFailed) as failed:
                await h.result(timeout=10)
            assert failed.value.reason == "exhausted"
            assert failed.value.error_type is not None
            assert failed.value.error_type.endswith(cls.__qualname__)
            assert str(failed.value)  # the JobFailed itself prints
        # The worker survived and still serves.
        assert await (await healthy.enqueue()).result(timeout=10) == "fine"
        assert worker.stats.dead == 2

    for h in handles:
        err = (await h.info()).errors[0]
        assert err.message  # something readable, not an empty string
        assert "Traceback" in err.traceback
    if cls is VeryUnprintable:
        assert (await handles[0].info()).errors[0].message == "<unprintable VeryUnprintable>"


async def test_unprintable_exception_in_process_mode(proc_app: App) -> None:
    async with running_worker(proc_app, ["proc"], process_slots=1):
        handle = await process_jobs.raise_unprintable.enqueue()
        with pytest.raises(JobFailed) as failed:
            await handle.result(timeout=30)
        assert await (await process_jobs.count_to.enqueue(2)).result(timeout=30) == 2
    assert failed.value.error_type == "tests.jobs.process_jobs.Unprintable"
    assert failed.value.error_message == "<unprintable Unprintable>"


@pytest.mark.parametrize(
    "damage",
    [
        {"del": "d"},  # payload gone
        {"del": "n"},  # name gone
        {"set": ("a", "lots")},  # attempt counter not a number
        {"set": ("ma", "")},  # max attempts empty
    ],
    ids=["no-payload", "no-name", "bad-attempt", "bad-max-attempts"],
)
async def test_malformed_job_hash(
    app: App, raw: redis.Redis, prefix: str, damage: dict[str, object]
) -> None:
    @app.job(queue="q")
    async def fine(n: int) -> int:
        return n

    broken = await fine.enqueue(1)
    key = f"{prefix}:{{q}}:j:{broken.id}"
    assert raw.exists(key)
    if damage.get("del") == "d":  # the payload lives in its own key
        raw.delete(f"{prefix}:{{q}}:d:{broken.id}")
    elif "del" in damage:
        raw.hdel(key, str(damage["del"]))
    else:
        field, value = damage["set"]  # type: ignore[misc]
        raw.hset(key, field, value)
    good = await fine.enqueue(2)

    async with running_worker(app, ["q"]):
        assert await good.result(timeout=10) == 2
        with pytest.raises(JobFailed) as failed:
            await broken.result(timeout=10)
    assert failed.value.reason == "malformed"
    info = await wait_state(app, "q", broken.id, JobState.DEAD)
    assert info.errors[-1].type == "MalformedJob"
    counts = await app.queue("q").counts()
    assert (counts.dead, counts.completed, counts.waiting, counts.active) == (1, 1, 0, 0)


async def test_job_hash_deleted_while_waiting(app: App, raw: redis.Redis, prefix: str) -> None:
    @app.job(queue="q")
    async def fine(n: int) -> int:
        return n

    vanished = await fine.enqueue(1)
    raw.delete(f"{prefix}:{{q}}:j:{vanished.id}")
    good = await fine.enqueue(2)
    async with running_worker(app, ["q"]):
        assert await good.result(timeout=10) == 2
    counts = await app.queue("q").counts()
    assert (counts.waiting, counts.active, counts.dead) == (0, 0, 0)


async def test_garbled_timestamp_does_not_break_the_worker(
    app: App, raw: redis.Redis, prefix: str
) -> None:
    @app.job(queue="q")
    async def fine(n: int) -> int:
        return n

    odd = await fine.enqueue(1)
    raw.hset(f"{prefix}:{{q}}:j:{odd.id}", "ct", "yesterday")
    async with running_worker(app, ["q"]):
        assert await odd.result(timeout=10) == 1  # the job itself is runnable
        assert await (await fine.enqueue(2)).result(timeout=10) == 2
    info = await odd.info()
    assert info.created_at is None and info.finished_at is not None
