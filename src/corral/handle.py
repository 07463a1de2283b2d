"""``JobHandle``: a reference to an enqueued job, to read it, wait for its result, cancel it or
run it again; and the one-job operations it shares with ``Queue`` (same rules, same errors)."""

from __future__ import annotations

import asyncio
import getpass
import socket
from datetime import timedelta
from typing import Any, Generic, TypeVar

from corral.client import Client
from corral.codec import PayloadCodec, from_json
from corral.engine import Engine
from corral.engine.outcomes import Cancelled
from corral.errors import JobFailed, JobNotFound, QueueNotFound, ResultTimeout
from corral.models import JobInfo, JobState

R = TypeVar("R")


def operator() -> str:
    """Who is acting, for audit records: ``user@host``."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def no_job(queue: str, job_id: str) -> JobNotFound:
    return JobNotFound(f"no job {job_id} in queue {queue!r}")


async def existing_queue(client: Client, queue: str) -> Engine:
    """The engine, once the queue is known to exist: operations on a name nobody enqueued
    to are refused (a typo must not pause or drain a phantom queue)."""
    engine = await client.engine()
    if not await engine.queue_exists(queue):
        raise QueueNotFound(queue, await engine.queues())
    return engine


async def get_job(client: Client, queue: str, job_id: str) -> JobInfo:
    """Everything about one job; JobNotFound if there is none (or retention trimmed it)."""
    info = await (await client.engine()).get_job(queue, job_id)
    if info is None:
        raise no_job(queue, job_id)
    return info


async def cancel_job(
    client: Client, queue: str, job_id: str, *, reason: str = "", by: str | None = None
) -> str:
    """``cancelled`` (it was waiting or delayed), ``signalled`` (its worker stops it within a
    second) or ``ended`` (nothing to do). QueueNotFound, JobNotFound for unknown names."""
    engine = await existing_queue(client, queue)
    outcome = await engine.cancel(queue, job_id, by or operator(), reason)
    if outcome is Cancelled.NO_JOB:
        raise no_job(queue, job_id)
    return {Cancelled.CANCELLED: "cancelled", Cancelled.SIGNALLED: "signalled"}.get(
        outcome, "ended"
    )


async def retry_job(client: Client, queue: str, job_id: str, *, by: str | None = None) -> bool:
    """Run a dead (failed or cancelled) job again now, with fresh attempts; False if it is not
    dead. QueueNotFound, JobNotFound for unknown names."""
    engine = await existing_queue(client, queue)
    if await engine.replay(queue, [job_id], by or operator()) == 1:
        return True
    if not await engine.job_exists(queue, job_id):
        raise no_job(queue, job_id)
    return False


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

    async def cancel(self, *, reason: str = "", by: str | None = None) -> str:
        """Cancel this job, as ``Queue.cancel`` does: ``cancelled`` (it was waiting or
        delayed), ``signalled`` (it is running: its worker stops it within a second) or
        ``ended`` (nothing to do). JobNotFound once it is gone."""
        return await cancel_job(self.client, self.queue, self.id, reason=reason, by=by)

    async def retry(self, *, by: str | None = None) -> bool:
        """Run this job again now with fresh attempts if it is dead (failed or cancelled), as
        ``Queue.retry`` does; False if it is not dead. JobNotFound once it is gone."""
        return await retry_job(self.client, self.queue, self.id, by=by)

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
