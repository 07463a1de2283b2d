"""Coalesces concurrent enqueues into one script call per event-loop tick.

A hundred coroutines that each ``await job.enqueue(...)`` at once cost a few round trips, not
a hundred: the first goes out at once, those that arrive while it is in flight are sent
together on the next tick. Each caller's own jobs always travel together, so ``enqueue_many``
stays atomic; callers of one tick share the call, and if the server refuses it (which
Python-side validation makes rare) every caller is retried on its own, so one bad batch cannot
fail the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence

from corral.engine.wire import NewJob

Store = Callable[[Sequence[NewJob]], Awaitable[list[bool]]]
MAX_JOBS_PER_CALL = 2000


class EnqueueBatcher:
    """One per queue and event loop; ``submit`` is what ``Engine.enqueue`` awaits."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._pending: list[tuple[Sequence[NewJob], asyncio.Future[list[bool]]]] = []
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._inflight = 0

    async def submit(self, jobs: Sequence[NewJob]) -> list[bool]:
        if not self._pending and not self._inflight:
            # Nobody else is enqueueing: go straight out, without a tick's detour.
            self._inflight += 1
            try:
                return await self._store(jobs)
            finally:
                self._inflight -= 1
        loop = asyncio.get_running_loop()
        future: asyncio.Future[list[bool]] = loop.create_future()
        self._pending.append((jobs, future))
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def _flush(self) -> None:
        self._scheduled = False
        pending, self._pending = self._pending, []
        batch: list[tuple[Sequence[NewJob], asyncio.Future[list[bool]]]] = []
        size = 0
        for item in pending:
            if batch and size + len(item[0]) > MAX_JOBS_PER_CALL:
                self._send(batch)
                batch, size = [], 0
            batch.append(item)
            size += len(item[0])
        if batch:
            self._send(batch)

    def _send(self, batch: list[tuple[Sequence[NewJob], asyncio.Future[list[bool]]]]) -> None:
        task = asyncio.get_running_loop().create_task(self._store_batch(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _store_batch(
        self, batch: list[tuple[Sequence[NewJob], asyncio.Future[list[bool]]]]
    ) -> None:
        jobs = [job for part, _ in batch for job in part]
        self._inflight += 1
        try:
            flags: list[bool] | None = await self._store(jobs)
            failure: Exception | None = None
        except Exception as exc:
            flags, failure = None, exc
        finally:
            self._inflight -= 1
        if flags is not None:
            start = 0
            for part, future in batch:
                _resolve(future, flags[start : start + len(part)])
                start += len(part)
        elif len(batch) == 1:
            _resolve(batch[0][1], exc=failure)
        else:
            for part, future in batch:  # isolate the caller whose jobs were refused
                try:
                    _resolve(future, await self._store(part))
                except Exception as own:
                    _resolve(future, exc=own)


def _resolve(
    future: asyncio.Future[list[bool]],
    value: list[bool] | None = None,
    *,
    exc: BaseException | None = None,
) -> None:
    if future.done():  # the caller was cancelled; its jobs are stored all the same
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value or [])
