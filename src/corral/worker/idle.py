"""How a worker with nothing to claim waits for work without polling: on the queues' wake-up
markers (BZPOPMIN), on one of its own jobs finishing, or on a local timer for the next delayed
job or held group, whichever comes first."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from corral.engine.ports import WorkerEngine
from corral.worker.updates import cancel_and_wait

IDLE_WAIT_S = 5.0


class IdleWait:
    """The markers being waited on and the next due time per queue (as loop times)."""

    def __init__(self, queues: Sequence[str]) -> None:
        self.queues = list(queues)
        self._markers: dict[str, asyncio.Task[bool]] = {}
        self._next_due: dict[str, float | None] = {}

    def due_in(self, queue: str, ms: int | None) -> None:
        """A claim said when the queue's next delayed job or held group is due (from about
        now: the moment Redis ran the claim)."""
        self._next_due[queue] = (
            None if ms is None else asyncio.get_running_loop().time() + ms / 1000
        )

    async def wait(self, engine: WorkerEngine, wake: asyncio.Event, free: int) -> None:
        """Block until ``wake`` is set, a marker arrives, or a delayed job is due. A worker with
        no free slot waits only for ``wake`` (one of its jobs finishing)."""
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(wake.wait())]
        if free > 0:
            for q in self.queues:
                if q not in self._markers:
                    self._markers[q] = asyncio.create_task(engine.wait_marker(q, IDLE_WAIT_S))
            waiters.extend(self._markers.values())
        # A due delayed job matters only with a free slot to claim it into; when full, the next
        # finishing job wakes us (and a due time already past would make every wait zero).
        now = asyncio.get_running_loop().time()
        dues = [d - now for d in self._next_due.values() if d is not None] if free > 0 else []
        timeout = max(0.0, min([IDLE_WAIT_S, *dues]))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiters[0].cancel()

    async def pass_on_markers(self, engine: WorkerEngine, full: bool) -> None:
        """Forget the markers that arrived; a worker that is full re-posts each one, so another
        worker wakes for that work."""
        for q, task in list(self._markers.items()):
            if task.done():
                del self._markers[q]
                if task.cancelled() or task.exception() is not None:
                    continue
                if task.result() and full:
                    await engine.signal(q)

    async def close(self) -> None:
        await cancel_and_wait(list(self._markers.values()))
        self._markers.clear()
