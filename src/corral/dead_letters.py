"""The dead-letter queue of one queue: list, inspect, replay (redrive) and purge."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from corral.codec import to_json
from corral.engine.outcomes import Removed
from corral.errors import ConfigError, JobNotFound, PayloadError
from corral.filters import JobFilter
from corral.handle import get_job
from corral.models import JobInfo, JobSummary
from corral.scope import QueueScope, operator

BATCH = 200
Progress = Callable[[int, int], None]


@dataclass(frozen=True, slots=True)
class ReplayReport:
    replayed: int
    matched: int


class DeadLetters:
    """Jobs that exhausted their attempts, raised Fatal, stalled too often, were poison or
    cancelled. Every method works without the job's code, except replaying an edited payload,
    which is validated against the job's model like a new enqueue."""

    def __init__(self, queue: QueueScope) -> None:
        self.queue = queue

    async def jobs(
        self, where: JobFilter | None = None, *, offset: int = 0, limit: int = 50
    ) -> list[JobSummary]:
        if where is None or where.empty:
            return await self.queue.jobs("dead", offset=offset, limit=limit)
        return await self.queue.find(where, states=("dead",), offset=offset, limit=limit)

    async def count(self, where: JobFilter | None = None) -> int:
        engine = await self.queue._existing()
        if where is None or where.empty:
            return (await engine.counts(self.queue.name)).dead
        n = 0
        async for batch in engine.scan_state(self.queue.name, "dead"):
            n += sum(where.matches(job) for job in batch)
        return n

    async def get(self, job_id: str) -> JobInfo:
        await self.queue._existing()
        info = await get_job(self.queue.client, self.queue.name, job_id)
        if info.state not in ("dead", "cancelled"):
            raise JobNotFound(f"job {job_id} is {info.state}, not in the dead-letter set")
        return info

    async def replay_one(self, job_id: str, *, payload: Any = None, by: str | None = None) -> bool:
        """Replay one dead job, optionally with an edited payload (a dict of the job's
        arguments); False if the job is not dead, JobNotFound for an unknown id. A payload that
        does not validate raises PayloadError naming the field and the job stays dead."""
        raw = ""
        if payload is not None:
            info = await self.get(job_id)
            job_fn = self.queue.registry.get(info.name)
            if job_fn is None:
                raise ConfigError(
                    f"cannot validate an edited payload for {info.name!r}: its job is not "
                    "registered in this App (load the app that defines it)"
                )
            text = payload if isinstance(payload, str) else to_json(payload)
            raw = job_fn.codec.dumps(job_fn.codec.validate_json(text))
            limit = self.queue.client.settings.max_payload_bytes
            if len(raw.encode()) > limit:
                raise PayloadError(f"edited payload is over the limit of {limit} bytes")
        engine = await self.queue._existing()
        if await engine.replay(self.queue.name, [job_id], by or operator(), raw) == 1:
            return True
        if not await engine.job_exists(self.queue.name, job_id):
            raise JobNotFound(f"no job {job_id} in queue {self.queue.name!r}")
        return False

    async def replay(
        self,
        where: JobFilter | None = None,
        *,
        rate: float | None = None,
        by: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> ReplayReport:
        """Replay every dead job matching ``where`` (all when None), at most ``rate`` per
        second if given, so a redrive cannot flood downstream systems."""
        if rate is not None and rate <= 0:
            raise ConfigError(f"rate must be positive, got {rate}")
        engine = await self.queue._existing()
        who = by or operator()
        # Snapshot the matching ids first: jobs that die again while the replay runs join the
        # end of the dead set, and must not be replayed again by this same call.
        ids = await self.queue.matching_ids(where, ("dead",))
        matched, replayed = len(ids), 0
        if dry_run:
            return ReplayReport(replayed=0, matched=matched)
        batch_size = BATCH if rate is None else max(1, min(BATCH, int(rate)))
        loop = asyncio.get_running_loop()
        for start in range(0, len(ids), batch_size):
            began = loop.time()
            part = ids[start : start + batch_size]
            replayed += await engine.replay(self.queue.name, part, who)
            if progress:
                progress(replayed, matched)
            if rate is not None:
                await asyncio.sleep(max(0.0, len(part) / rate - (loop.time() - began)))
        return ReplayReport(replayed=replayed, matched=matched)

    async def purge(
        self,
        where: JobFilter | None = None,
        *,
        dry_run: bool = False,
        progress: Progress | None = None,
    ) -> int:
        """Delete dead jobs matching ``where`` (all when None); returns how many."""
        engine = await self.queue._existing()
        n = offset = 0
        while True:
            ids = await engine.list_ids(self.queue.name, "dead", offset, BATCH, newest_first=False)
            if not ids:
                return n
            rows = await engine.summaries(self.queue.name, ids)
            chosen = [job.id for job in rows if where is None or where.matches(job)]
            removed = 0
            if not dry_run:
                for job_id in chosen:
                    removed += await engine.remove(self.queue.name, job_id) is Removed.REMOVED
            n += len(chosen) if dry_run else removed
            if progress:
                progress(n, 0)
            offset += len(ids) - removed
