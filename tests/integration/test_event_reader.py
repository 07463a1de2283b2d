"""``EventReader`` against a real server and a real worker: every transition of every job,
resumable by name, at least once (a reader that dies holding events hands them over), and a gap
said out loud when the stream was trimmed past what the group read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
import redis

from corral import App, ConfigError, Fixed, RetryPolicy
from corral.history import EventReader
from corral.models import QueueEvent
from corral.testing import running_worker

FAST = RetryPolicy(attempts=2, backoff=Fixed(timedelta(milliseconds=10)))


def define(app: App) -> Callable[..., object]:
    @app.job(queue="shop", retry=FAST)
    async def sync_order(n: int) -> int:
        if n < 0:
            raise ValueError("negative")
        return n * 2

    return sync_order


async def collect(
    reader: EventReader, until: Callable[[list[QueueEvent]], bool]
) -> list[QueueEvent]:
    got: list[QueueEvent] = []

    async def run() -> None:
        async for events in reader:
            got.extend(events)
            await reader.ack(events)
            if until(got):
                return

    await asyncio.wait_for(run(), 20)
    return got


async def test_every_transition_of_every_job_is_read_once(make_app: Callable[..., App]) -> None:
    app = make_app()
    sync_order = define(app)
    async with app:
        reader = EventReader(app, ["shop"], name="history", wait=timedelta(milliseconds=100))
        async with reader:  # turns the queue's events on before anything happens
            good = await sync_order.enqueue(21)  # type: ignore[attr-defined]
            bad = await sync_order.enqueue(-1)  # type: ignore[attr-defined]
            async with running_worker(app, ["shop"]):
                events = await collect(reader, lambda got: sum(e.kind == "dead" for e in got) == 1
                                       and any(e.kind == "completed" for e in got))  # fmt: skip
        kinds = {job: [e.kind for e in events if e.job_id == job] for job in (good.id, bad.id)}
        assert kinds[good.id] == ["enqueued", "started", "completed"]
        assert kinds[bad.id] == ["enqueued", "started", "retrying", "started", "dead"]
        done = next(e for e in events if e.kind == "completed")
        assert done.result == 42 and done.attempt == 1
        assert len({e.stream_id for e in events}) == len(events)  # each once
        # resumable: the same name carries on after what was acknowledged
        async with EventReader(
            app, ["shop"], name="history", wait=timedelta(milliseconds=50)
        ) as again:
            assert await again.read() == []
            assert [(lag.pending, lag.lost) for lag in await again.lag()] == [(0, False)]


async def test_a_reader_that_dies_holding_events_hands_them_over(
    make_app: Callable[..., App],
) -> None:
    app = make_app()
    sync_order = define(app)
    async with app:
        quick = timedelta(milliseconds=300)
        dying = EventReader(app, ["shop"], name="sink", consumer="a", take_over_after=quick)
        alive = EventReader(app, ["shop"], name="sink", consumer="b", take_over_after=quick,
                            wait=timedelta(milliseconds=50))  # fmt: skip
        await dying.open()
        await alive.open()
        for n in range(5):
            await sync_order.enqueue(n)  # type: ignore[attr-defined]
        held = await dying.read()  # ... and never acknowledged: its process died
        assert [e.kind for e in held] == ["enqueued"] * 5
        assert await alive.read() == []  # not delivered twice while still held
        await asyncio.sleep(0.4)
        taken = await alive.read()
        assert sorted(e.stream_id for e in taken) == sorted(e.stream_id for e in held)
        await alive.ack(taken)
        assert [lag.pending for lag in await alive.lag()] == [0]


async def test_falling_behind_past_the_cap_is_a_gap(
    make_app: Callable[..., App], raw: redis.Redis
) -> None:
    app = make_app()
    sync_order = define(app)
    async with app, EventReader(app, ["shop"], name="slow") as reader:
        for n in range(20):
            await sync_order.enqueue(n)  # type: ignore[attr-defined]
        await reader.ack(await reader.read())
        assert not any(lag.lost for lag in await reader.lag())
        for n in range(20):
            await sync_order.enqueue(n)  # type: ignore[attr-defined]
        engine = await app.engine()
        raw.xtrim(engine.keys("shop").events, maxlen=5, approximate=False)
        assert [lag.lost for lag in await reader.lag()] == [True]


async def test_reading_without_opening_is_refused(make_app: Callable[..., App]) -> None:
    app = make_app()
    define(app)
    reader = EventReader(app, ["shop"])
    with pytest.raises(ConfigError, match="open the EventReader first"):
        await reader.read()
    with pytest.raises(ConfigError, match="at least one queue"):
        EventReader(app, [])
