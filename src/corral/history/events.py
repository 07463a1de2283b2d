"""``EventReader``: every transition of the jobs of some queues, read from their events
streams as a Redis consumer group, so that it is

- **resumable**: a reader of the same name carries on after the last event acknowledged, across
  restarts of its process;
- **at least once**: an event is delivered until it is acknowledged; one that a reader took and
  never acknowledged (it died, it hangs) is handed to another after ``take_over_after``;
- **ordered** per queue, each event carrying a unique, increasing ``stream_id``: applying the
  same event twice must change nothing (key what you write by it, or by job, attempt and kind);
- **honest about gaps**: a stream is capped (about 10,000 entries per queue); if a reader falls
  that far behind, ``lag()`` says events were lost instead of carrying on in silence.

Usage::

    reader = EventReader(app, ["recipes"], name="history")
    async with reader:
        async for events in reader:
            store(events)
            await reader.ack(events)
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import AsyncIterator, Sequence
from datetime import timedelta
from types import TracebackType

from corral.app import App
from corral.engine import Engine
from corral.errors import ConfigError
from corral.models import EventLag, QueueEvent


class EventReader:
    """Reads the events of ``queues`` as the consumer group ``name``; ``consumer`` names this
    reader within it (host:pid by default, so two processes share the work)."""

    def __init__(
        self,
        app: App,
        queues: Sequence[str],
        *,
        name: str = "corral-events",
        consumer: str | None = None,
        batch: int = 500,
        wait: timedelta = timedelta(seconds=1),
        take_over_after: timedelta = timedelta(seconds=60),
        from_start: bool = True,
        enable: bool = True,
    ) -> None:
        if not queues:
            raise ConfigError("an EventReader needs at least one queue")
        if batch < 1:
            raise ConfigError(f"batch must be at least 1, got {batch}")
        self.app = app
        self.queues = list(dict.fromkeys(queues))
        self.name = name
        self.consumer = consumer or f"{socket.gethostname()}:{os.getpid()}"
        self.batch = batch
        self._wait_ms = max(1, int(wait.total_seconds() * 1000))
        self._take_over_ms = int(take_over_after.total_seconds() * 1000)
        self._from_start = from_start
        self._enable = enable
        self._next_take_over = 0.0
        self._engine: Engine | None = None

    async def open(self) -> EventReader:
        """Turn the queues' events on (unless ``enable=False``) and join the group."""
        engine = self._engine = await self.app.engine()
        for queue in self.queues:
            if self._enable:
                await self.app.queue(queue).set_events(True)
            await engine.ensure_event_group(queue, self.name, from_start=self._from_start)
        return self

    async def __aenter__(self) -> EventReader:
        return await self.open()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._engine = None

    def _opened(self) -> Engine:
        if self._engine is None:
            raise ConfigError("open the EventReader first (async with reader: ...)")
        return self._engine

    async def read(self) -> list[QueueEvent]:
        """The next events (at most ``batch``), waiting up to ``wait`` for one: first any that
        a reader of this group took and left unacknowledged for ``take_over_after``."""
        engine = self._opened()
        now = asyncio.get_running_loop().time()
        if now >= self._next_take_over:
            self._next_take_over = now + self._take_over_ms / 2000
            taken: list[QueueEvent] = []
            for queue in self.queues:
                taken += await engine.take_over_events(
                    queue, self.name, self.consumer, self._take_over_ms, self.batch
                )
            if taken:
                return taken
        return await engine.read_events(
            self.queues, self.name, self.consumer, self.batch, self._wait_ms
        )

    async def ack(self, events: Sequence[QueueEvent]) -> None:
        """These were applied: they will not be delivered again."""
        engine = self._opened()
        by_queue: dict[str, list[str]] = {}
        for event in events:
            by_queue.setdefault(event.queue, []).append(event.stream_id)
        for queue, ids in by_queue.items():
            await engine.ack_events(queue, self.name, ids)

    async def lag(self) -> list[EventLag]:
        """How far this group is behind on each queue (``lost``: a gap)."""
        engine = self._opened()
        lags = [await engine.event_lag(q, self.name) for q in self.queues]
        return [lag for lag in lags if lag is not None]

    async def __aiter__(self) -> AsyncIterator[list[QueueEvent]]:
        """Batches as they come (empty ones are skipped); acknowledge each with ``ack``."""
        while True:
            events = await self.read()
            if events:
                yield events
