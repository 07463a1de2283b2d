"""``JobHandle``: a reference to an enqueued job, to read it and wait for its result."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, Generic, TypeVar

from corral.client import Client
from corral.codec import PayloadCodec, from_json
from corral.errors import JobFailed, JobNotFound, ResultTimeout
from corral.models import JobInfo, JobState

R = TypeVar("R")


async def get_job(client: Client, queue: str, job_id: str) -> JobInfo:
    """Everything about one job; JobNotFound if there is none (or retention trimmed it)."""
    info = await (await client.engine()).get_job(queue, job_id)
    if info is None:
        raise JobNotFound(f"no job {job_id} in queue {queue!r}")
    return info


class JobHandle(Generic[R]):
    """A reference to an enqueued job. ``created`` is False when ``job_id`` matched an
    existing job and nothing new was stored."""

    __slots__ = ("_codec", "client", "created", "id", "queue")

    def __init__(
        self,
        client: Client,
        queue: str,
        job_id: str,
        codec: PayloadCodec | None,
        created: bool = True,
    ) -> None:
        self.client = client
        self.queue = queue
        self.id = job_id
        self.created = created
        self._codec = codec

    def __repr__(self) -> str:
        return f"JobHandle(queue={self.queue!r}, id={self.id!r}, created={self.created})"

    async def info(self) -> JobInfo:
        return await get_job(self.client, self.queue, self.id)

    async def state(self) -> JobState:
        return (await self.info()).state

    async def progress(self) -> Any:
        return (await self.info()).progress

    async def logs(self) -> list[str]:
        return await (await self.client.engine()).job_logs(self.queue, self.id)

    async def result(self, timeout: timedelta | float | None = None) -> R:
        """Wait (without polling) until the job ends; its result, or JobFailed if it died."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        engine = await self.client.engine()
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while True:
            state = await engine.watch(self.queue, self.id)
            if state is None:
                raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
            if state.terminal:
                info = await self.info()
                if info.state != JobState.COMPLETED:
                    err = info.last_error
                    raise JobFailed(
                        self.id,
                        info.dead_reason or "dead",
                        err.type if err else None,
                        err.message if err else None,
                    )
                raw = await engine.result_json(self.queue, self.id)
                if self._codec is None:
                    return from_json(raw)  # type: ignore[no-any-return]
                return self._codec.load_result(raw)  # type: ignore[no-any-return]
            wait = 5.0
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ResultTimeout(f"job {self.id} still {state} after {seconds:g}s")
                wait = min(wait, remaining)
            await engine.wait_done(self.queue, self.id, max(wait, 0.01))

    def result_sync(self, timeout: timedelta | float | None = None) -> R:
        return self.client.portal.call(self.result(timeout))
