"""This worker's entry in the registry of live workers (``corral workers``, ``App.workers()``):
written when it starts, rewritten by every heartbeat of the lease keeper (with the jobs it is
running then), removed when it exits. A worker that dies without removing it stops counting as
alive three heartbeats later, and the next reader or heartbeat drops its entry."""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from importlib.metadata import PackageNotFoundError, version

from corral.engine.ports import WorkerEngine
from corral.errors import CorralError
from corral.models import WorkerInfo
from corral.worker.running import Running

log = logging.getLogger(__name__)

JOB_IDS_LISTED = 100  # a worker at concurrency 1,000 keeps its entry small


def corral_version() -> str:
    try:
        return version("corral")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


class Presence:
    """What this worker says about itself, and the calls that say it."""

    def __init__(
        self,
        worker_id: str,
        queues: Sequence[str],
        concurrency: int,
        heartbeat: timedelta,
        running: Mapping[str, Running],
    ) -> None:
        self.worker_id = worker_id
        self._queues = tuple(queues)
        self._concurrency = concurrency
        self._heartbeat = heartbeat
        self._running = running
        self._host = socket.gethostname()
        self._version = corral_version()
        self._started_at: datetime | None = None

    def info(self) -> WorkerInfo:
        jobs = list(self._running)
        return WorkerInfo(
            id=self.worker_id,
            host=self._host,
            pid=os.getpid(),
            queues=self._queues,
            concurrency=self._concurrency,
            running=len(jobs),
            jobs=tuple(jobs[:JOB_IDS_LISTED]),
            started_at=self._started_at,
            version=self._version,
            heartbeat=self._heartbeat,
        )

    async def register(self, engine: WorkerEngine) -> None:
        """The first entry, at start: errors are the caller's (the worker cannot start)."""
        self._started_at = datetime.now(UTC)
        await engine.register_worker(self.info())

    async def beat(self, engine: WorkerEngine) -> None:
        """Rewrite the entry; a failure is logged and the next heartbeat tries again."""
        try:
            await engine.register_worker(self.info())
        except CorralError as exc:
            log.warning("worker registry: %s", exc)

    async def leave(self, engine: WorkerEngine) -> None:
        """Remove the entry at exit; if Redis is unreachable it expires by itself."""
        try:
            await engine.unregister_worker(self.worker_id)
        except CorralError as exc:
            log.warning("worker registry: could not remove %s (%s)", self.worker_id, exc)
