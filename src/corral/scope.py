"""What the handles on one queue share (``Queue``, ``Group``, ``DeadLetters``): the client, the
queue's name, the job registry (to validate edited payloads), the check that the queue exists,
and the listing and search every one of them offers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.client import Client
from corral.definition import JobFunction
from corral.engine import LISTABLE, Engine
from corral.engine.keys import check_queue_name
from corral.errors import ConfigError, JobNotFound
from corral.filters import JobFilter
from corral.handle import existing_queue, no_job
from corral.models import JobSummary


class QueueScope:
    """One queue of one client."""

    def __init__(
        self,
        client: Client,
        name: str,
        registry: Mapping[str, JobFunction[Any, Any]] | None = None,
    ) -> None:
        self.client = client
        self.name = check_queue_name(name)
        self.registry: Mapping[str, JobFunction[Any, Any]] = registry or {}

    async def _existing(self) -> Engine:
        """The engine, once the queue is known to exist: operations on a name nobody enqueued
        to are refused (a typo must not pause or drain a phantom queue)."""
        return await existing_queue(self.client, self.name)

    async def exists(self) -> bool:
        return await (await self.client.engine()).queue_exists(self.name)

    async def create(self) -> None:
        """Declare the queue before any job is enqueued to it (idempotent); configuring it
        (limits, retention, events) declares it too."""
        await (await self.client.engine()).register_queue(self.name)

    def _missing(self, job_id: str) -> JobNotFound:
        return no_job(self.name, job_id)

    async def jobs(
        self,
        state: str,
        *,
        offset: int = 0,
        limit: int = 50,
        newest_first: bool = True,
        running_longer: timedelta | None = None,
    ) -> list[JobSummary]:
        """One page of jobs in a state (waiting, delayed, active, completed, dead); delayed
        jobs come with ``due_at``, active ones with ``lease_until``. ``running_longer``: only
        active jobs whose attempt started longer ago than this (stuck ones), by their start."""
        if state not in LISTABLE:
            raise ConfigError(f"state must be one of {', '.join(LISTABLE)}, got {state!r}")
        engine = await self._existing()
        if running_longer is not None:
            if state != "active":
                raise ConfigError(f"running_longer lists active jobs, not {state} ones")
            return await self._running_longer(engine, running_longer, offset, limit, newest_first)
        return await engine.list_jobs(self.name, state, offset, limit, newest_first)

    async def _running_longer(
        self, engine: Engine, span: timedelta, offset: int, limit: int, newest_first: bool
    ) -> list[JobSummary]:
        # The active set is ordered by lease deadline, which heartbeats move: the start time
        # is read from every running job (as many as the workers' slots, so a bounded scan).
        cutoff = datetime.now(UTC) - span
        found: list[JobSummary] = []
        async for batch in engine.scan_state(self.name, "active"):
            found += [j for j in batch if j.started_at is not None and j.started_at <= cutoff]
        found.sort(key=lambda j: (j.started_at, j.id), reverse=newest_first)
        return found[offset : offset + limit]

    async def find(
        self,
        where: JobFilter,
        *,
        states: Sequence[str] = LISTABLE,
        limit: int = 50,
        offset: int = 0,
    ) -> list[JobSummary]:
        """Jobs matching ``where`` in the given states (a scan in bounded batches), paged."""
        engine = await self._existing()
        found: list[JobSummary] = []
        skipped = 0
        for state in states:
            async for batch in engine.scan_state(self.name, state):
                for job in batch:
                    if not where.matches(job):
                        continue
                    if skipped < offset:
                        skipped += 1
                        continue
                    found.append(job)
                    if len(found) >= limit:
                        return found
        return found

    async def matching_ids(self, where: JobFilter | None, states: Sequence[str]) -> list[str]:
        """Ids of every job in ``states`` matching ``where`` (all when None), snapshot first:
        bulk actions act on what matched when they began."""
        engine = await self._existing()
        ids: list[str] = []
        for state in states:
            async for batch in engine.scan_state(self.name, state):
                ids += [job.id for job in batch if where is None or where.matches(job)]
        return ids
