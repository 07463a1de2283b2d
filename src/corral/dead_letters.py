"""The dead-letter queue of one queue: list, inspect, replay (redrive) and purge."""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from corral.codec import to_json
from corral.definition import JobFunction
from corral.engine.outcomes import Removed
from corral.errors import ConfigError, JobNotFound, PayloadError
from corral.filters import JobFilter
from corral.handle import get_job, operator
from corral.merge_patch import merge_patch
from corral.models import JobInfo, JobSummary
from corral.scope import QueueScope

log = logging.getLogger(__name__)

BATCH = 200
Progress = Callable[[int, int], None]
Edit = Callable[[dict[str, Any]], dict[str, Any]] | Mapping[str, Any]
"""How ``replay(edit=...)`` changes each payload: a function of the payload (a dict of the
job's arguments) returning the new one, or a JSON merge patch (RFC 7386) as a mapping."""


@dataclass(frozen=True, slots=True)
class RejectedEdit:
    """A dead job a replay left dead: its edited payload did not validate against the job's
    model (``fields`` names the arguments that failed), or the edit could not be made."""

    id: str
    fields: tuple[str, ...]
    message: str


@dataclass(frozen=True, slots=True)
class ReplayReport:
    """``matched`` dead jobs, ``replayed`` of them sent back to waiting; ``rejected`` were
    kept dead because their edit did not validate."""

    replayed: int
    matched: int
    rejected: tuple[RejectedEdit, ...] = ()


async def _uninterrupted(call: Awaitable[int]) -> tuple[int, bool]:
    """Await a replay script call to its end even if the caller is cancelled meanwhile
    (Ctrl-C): the script may already have run, and the count of replayed jobs must stay exact.
    Returns its reply and whether a cancellation arrived."""
    task = asyncio.ensure_future(call)
    try:
        return await asyncio.shield(task), False
    except asyncio.CancelledError:
        return await task, True


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

    def _definition(self, name: str) -> JobFunction[Any, Any]:
        job_fn = self.queue.registry.get(name)
        if job_fn is None:
            raise ConfigError(
                f"cannot validate an edited payload for {name!r}: its job is not registered "
                "in this App (load the app that defines it)"
            )
        return job_fn

    def _validated(self, job_fn: JobFunction[Any, Any], payload: Any) -> str:
        """The stored form of an edited payload, validated like a new enqueue (PayloadError
        naming the fields otherwise)."""
        text = payload if isinstance(payload, str) else to_json(payload)
        raw = job_fn.codec.dumps(job_fn.codec.validate_json(text))
        limit = self.queue.client.settings.max_payload_bytes
        if len(raw.encode()) > limit:
            raise PayloadError(f"edited payload is over the limit of {limit} bytes")
        return raw

    async def replay_one(self, job_id: str, *, payload: Any = None, by: str | None = None) -> bool:
        """Replay one dead job, optionally with an edited payload (a dict of the job's
        arguments); False if the job is not dead, JobNotFound for an unknown id. A payload that
        does not validate raises PayloadError naming the field and the job stays dead."""
        raw = ""
        if payload is not None:
            info = await self.get(job_id)
            raw = self._validated(self._definition(info.name), payload)
        engine = await self.queue._existing()
        if await engine.replay(self.queue.name, [job_id], by or operator(), raw) == 1:
            return True
        if not await engine.job_exists(self.queue.name, job_id):
            raise JobNotFound(f"no job {job_id} in queue {self.queue.name!r}")
        return False

    async def edited(self, job_id: str, edit: Edit) -> str:
        """The payload of dead job ``job_id`` with ``edit`` applied, validated against its
        job's model and serialised as stored. PayloadError if it does not validate, ConfigError
        if the edit cannot be made (the job's code is not in this App, the edit raised)."""
        info = await self.get(job_id)
        job_fn = self._definition(info.name)
        payload = info.payload if isinstance(info.payload, dict) else {}
        if isinstance(edit, Mapping):
            changed = merge_patch(payload, dict(edit))
        else:
            try:
                changed = edit(copy.deepcopy(payload))
            except Exception as exc:
                raise ConfigError(f"the edit raised {type(exc).__name__}: {exc}") from exc
        if changed is None:
            raise ConfigError("the edit returned None: it must return the new payload")
        if not isinstance(changed, dict):
            raise ConfigError(f"the edit made a {type(changed).__name__}, not an object")
        return self._validated(job_fn, changed)

    async def replay(
        self,
        where: JobFilter | None = None,
        *,
        rate: float | None = None,
        by: str | None = None,
        dry_run: bool = False,
        progress: Progress | None = None,
        edit: Edit | None = None,
    ) -> ReplayReport:
        """Replay every dead job matching ``where`` (all when None), at most ``rate`` per
        second if given, so a redrive cannot flood downstream systems.

        With ``edit`` (a function of the payload, or a JSON merge patch), each job's payload is
        edited and validated against its job's model like a new enqueue (the App must define
        the jobs); a job whose edit does not validate stays dead and is listed in the report's
        ``rejected``, the others are replayed. ``dry_run`` replays nothing but still validates
        the edits. ``progress(replayed, matched)`` is called after each step, also when the
        call is cancelled (Ctrl-C), so the caller can say how far it got."""
        if rate is not None and rate <= 0:
            raise ConfigError(f"rate must be positive, got {rate}")
        engine = await self.queue._existing()
        who = by or operator()
        # Snapshot the matching ids first: jobs that die again while the replay runs join the
        # end of the dead set, and must not be replayed again by this same call.
        ids = await self.queue.matching_ids(where, ("dead",))
        matched = len(ids)
        if edit is not None:
            return await self._replay_edited(ids, edit, who, rate, dry_run, progress)
        if dry_run:
            return ReplayReport(replayed=0, matched=matched)
        batch_size = BATCH if rate is None else max(1, min(BATCH, int(rate)))
        loop = asyncio.get_running_loop()
        replayed = 0
        for start in range(0, len(ids), batch_size):
            began = loop.time()
            part = ids[start : start + batch_size]
            n, cancelled = await _uninterrupted(engine.replay(self.queue.name, part, who))
            replayed += n
            if progress:
                progress(replayed, matched)
            if cancelled:
                raise asyncio.CancelledError
            if rate is not None:
                await asyncio.sleep(max(0.0, len(part) / rate - (loop.time() - began)))
        return ReplayReport(replayed=replayed, matched=matched)

    async def _replay_edited(
        self,
        ids: list[str],
        edit: Edit,
        who: str,
        rate: float | None,
        dry_run: bool,
        progress: Progress | None,
    ) -> ReplayReport:
        """One job at a time: each has its own payload to validate and store."""
        engine = await self.queue._existing()
        loop = asyncio.get_running_loop()
        replayed = 0
        rejected: list[RejectedEdit] = []
        for job_id in ids:
            began = loop.time()
            try:
                raw = await self.edited(job_id, edit)
            except JobNotFound:  # trimmed or replayed by someone else meanwhile
                continue
            except PayloadError as exc:
                rejected.append(RejectedEdit(job_id, tuple(exc.fields), str(exc)))
                continue
            except ConfigError as exc:
                rejected.append(RejectedEdit(job_id, (), str(exc)))
                continue
            if dry_run:
                continue
            call = engine.replay(self.queue.name, [job_id], who, raw)
            n, cancelled = await _uninterrupted(call)
            replayed += n
            if progress:
                progress(replayed, len(ids))
            if cancelled:
                raise asyncio.CancelledError
            if rate is not None:
                await asyncio.sleep(max(0.0, 1 / rate - (loop.time() - began)))
        if rejected:
            log.info("replay: %d edited job(s) did not validate and stay dead", len(rejected))
        return ReplayReport(replayed=replayed, matched=len(ids), rejected=tuple(rejected))

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
