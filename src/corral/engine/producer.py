"""The producer's part of the engine: storing new jobs, atomically per call."""

from __future__ import annotations

from collections.abc import Sequence

from corral.engine.base import EngineBase
from corral.engine.batching import EnqueueBatcher
from corral.engine.errors import redis_errors
from corral.engine.wire import NewJob, enqueue_args


class Producer(EngineBase):
    @redis_errors
    async def register_queue(self, queue: str) -> None:
        """Declare a queue (idempotent): enqueue, ``Queue.create`` and configuring do."""
        await self._declare(queue)

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool]:
        """Store jobs atomically; per job True if stored, False if its id already existed.
        Concurrent callers on this loop share one script call (see ``batching``)."""
        if queue not in self._registered:
            await self.register_queue(queue)
        batcher = self._batchers.get(queue)
        if batcher is None:
            batcher = EnqueueBatcher(lambda batch: self.store(queue, batch))
            self._batchers[queue] = batcher
        return await batcher.submit(jobs)

    async def store(self, queue: str, jobs: Sequence[NewJob]) -> list[bool]:
        """One enqueue script call for exactly these jobs."""
        flags = await self._run("enqueue", queue, enqueue_args(jobs))
        return [f == 1 for f in flags]
