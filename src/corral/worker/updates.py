"""Progress and log writes of running jobs, and cancelling helper tasks reliably."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

from corral.codec import to_json
from corral.engine import Claimed
from corral.engine.ports import WorkerEngine
from corral.errors import CorralError

log = logging.getLogger(__name__)


async def cancel_and_wait(tasks: Sequence[asyncio.Future[Any]]) -> None:
    """Cancel tasks and wait until they end, cancelling again any that swallowed the request:
    on Python 3.11 ``asyncio.wait_for`` (used inside redis-py) loses a cancel that races the
    reply it was waiting for, and a helper loop would then run forever."""
    pending = {t for t in tasks if not t.done()}
    while pending:
        for task in pending:
            task.cancel()
        _, pending = await asyncio.wait(pending, timeout=0.5)
    for task in tasks:
        if not task.cancelled():
            task.exception()  # retrieved: a helper's error was logged where it happened


class Updates:
    """Progress and log writes of one attempt (``JobContext.writer``), callable from the loop,
    a worker thread or the process-pool reader. They are sent one at a time, in call order,
    so log lines keep their order and the last progress wins; the worker awaits ``flush()``
    before recording the outcome, so a write made just before ``return`` is not lost."""

    __slots__ = ("_background", "_engine", "_job", "_last", "_loop", "_queue")

    def __init__(
        self,
        engine: WorkerEngine,
        queue: str,
        job: Claimed,
        background: set[asyncio.Task[Any]],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._engine = engine
        self._queue = queue
        self._job = job
        self._background = background
        self._loop = loop
        self._last: asyncio.Task[None] | None = None

    @property
    def pending(self) -> bool:
        """Whether a write was made (``flush`` then has something to wait for)."""
        return self._last is not None

    def write(self, progress: Any, line: str) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._schedule(progress, line)
        else:  # call_soon_threadsafe keeps the calling thread's order
            self._loop.call_soon_threadsafe(self._schedule, progress, line)

    def _schedule(self, progress: Any, line: str) -> None:
        task = self._loop.create_task(self._send(self._last, progress, line))
        self._last = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _send(self, previous: asyncio.Task[None] | None, progress: Any, line: str) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            await self._engine.touch(
                self._queue,
                self._job.id,
                self._job.token,
                progress_json="" if progress is None else to_json(progress),
                log_line=line,
            )
        except CorralError as exc:
            log.warning("job %s: progress/log update not written: %s", self._job.id, exc)

    async def flush(self) -> None:
        if self._last is not None:
            await asyncio.wait([self._last])
