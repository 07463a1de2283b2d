"""The reader's part of the engine: jobs, listings, counts, groups and queues as read models."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from corral.engine.base import EngineBase
from corral.engine.errors import redis_errors
from corral.engine.schema import (
    COUNT_FIELDS,
    QUEUE_GROUP_CONCURRENCY,
    QUEUE_MAX_JOBS,
    RESULT,
    SUMMARY_FIELDS,
    decode_counts,
    decode_group,
    decode_job,
    decode_summary,
    number,
)
from corral.models import GroupState, JobInfo, JobState, JobSummary, QueueCounts

LISTABLE = ("waiting", "delayed", "active", "completed", "dead")


class Reader(EngineBase):
    @redis_errors
    async def queues(self) -> list[str]:
        names = cast(set[str], await self.client.smembers(self.registry))
        return sorted(names)

    @redis_errors
    async def queue_exists(self, queue: str) -> bool:
        return bool(await self.client.sismember(self.registry, queue))

    @redis_errors
    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(k.job(job_id))
        pipe.get(k.payload(job_id))
        raw, payload = await pipe.execute()
        return decode_job(queue, job_id, raw, payload) if raw else None

    @redis_errors
    async def job_exists(self, queue: str, job_id: str) -> bool:
        return bool(await self.client.exists(self.keys(queue).job(job_id)))

    @redis_errors
    async def result_json(self, queue: str, job_id: str) -> str | None:
        """A completed job's result as stored (JSON; None for a null result)."""
        return cast(str | None, await self.client.hget(self.keys(queue).job(job_id), RESULT))

    @redis_errors
    async def job_logs(self, queue: str, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        return cast(list[str], await self.client.lrange(self.keys(queue).log(job_id), start, end))

    async def watch(self, queue: str, job_id: str) -> JobState | None:
        """The job's state, registering the caller as waiting for its end (``wait_done``)."""
        state = await self._run("watch", queue, [job_id])
        return JobState(state) if state else None

    @redis_errors
    async def wait_done(self, queue: str, job_id: str, timeout_s: float) -> bool:
        got = await self.client.blpop([self.keys(queue).done(job_id)], timeout=timeout_s)
        return got is not None

    @redis_errors
    async def counts(self, queue: str) -> QueueCounts:
        """Jobs per state and the queue's flags, in one round trip."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(k.meta, list(COUNT_FIELDS))
        for state in ("delayed", "active", "completed", "dead"):
            pipe.zcard(k.state_set(state))
        meta, delayed, active, completed, dead = await pipe.execute()
        return decode_counts(queue, meta, delayed, active, completed, dead)

    @redis_errors
    async def max_jobs(self, queue: str) -> int | None:
        """The queue's cap on waiting + delayed jobs, or None."""
        raw = await self.client.hget(self.keys(queue).meta, QUEUE_MAX_JOBS)
        return number(raw) or None

    @redis_errors
    async def scan_groups(
        self, queue: str, cursor: int = 0, count: int = 100
    ) -> tuple[int, list[str]]:
        """One page of the queue's known groups (those with waiting or running jobs)."""
        nxt, names = await self.client.sscan(self.keys(queue).groups, cursor, count=count)
        return int(nxt), sorted(cast(list[str], names))

    @redis_errors
    async def group_states(self, queue: str, groups: Sequence[str]) -> list[GroupState]:
        """Waiting/active counts, flags and limits of the given groups, in one round trip."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(k.meta, QUEUE_GROUP_CONCURRENCY)
        for g in groups:
            pipe.zcard(k.waiting(g))
            pipe.hget(k.gactive, g)
            pipe.sismember(k.gpaused, g)
            pipe.zscore(k.limited, g)
            pipe.zscore(k.ready, g)
            pipe.hget(k.glimit, g)
            pipe.hget(k.grate, g)
            pipe.hget(k.gweight, g)
        queue_limit, *raw = await pipe.execute()
        return [decode_group(g, queue_limit, *raw[i * 8 : i * 8 + 8]) for i, g in enumerate(groups)]

    @redis_errors
    async def _groups_of(self, queue: str) -> list[str]:
        names = cast(set[str], await self.client.smembers(self.keys(queue).groups))
        return ["", *sorted(names)]

    @redis_errors
    async def list_ids(
        self, queue: str, state: str, offset: int, limit: int, newest_first: bool
    ) -> list[str]:
        """Ids of jobs in one state, paged. Waiting jobs are merged across groups in the order
        they would run (priority, then FIFO); ``newest_first`` reverses every state."""
        if state not in LISTABLE:
            raise ValueError(f"state must be one of {', '.join(LISTABLE)}, got {state!r}")
        k = self.keys(queue)
        if state != "waiting":
            key = k.state_set(state)
            end = offset + limit - 1
            if newest_first:
                return cast(list[str], await self.client.zrevrange(key, offset, end))
            return cast(list[str], await self.client.zrange(key, offset, end))
        pipe = self.client.pipeline(transaction=False)
        for g in await self._groups_of(queue):
            if newest_first:
                pipe.zrevrange(k.waiting(g), 0, offset + limit - 1, withscores=True)
            else:
                pipe.zrange(k.waiting(g), 0, offset + limit - 1, withscores=True)
        runs: list[list[tuple[str, float]]] = await pipe.execute()
        merged = heapq.merge(*runs, key=lambda p: -p[1] if newest_first else p[1])
        return [job_id for job_id, _ in list(merged)[offset : offset + limit]]

    @redis_errors
    async def summaries(self, queue: str, ids: Sequence[str]) -> list[JobSummary]:
        """The listing fields of several jobs in one round trip (missing jobs are skipped)."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(k.job(job_id), list(SUMMARY_FIELDS))
        rows: list[list[str | None]] = await pipe.execute()
        found = (decode_summary(job_id, row) for job_id, row in zip(ids, rows, strict=True))
        return [s for s in found if s is not None]

    async def scan_state(
        self, queue: str, state: str, batch: int = 500
    ) -> AsyncIterator[list[JobSummary]]:
        """Every job of a state, as summaries, a batch at a time (for find and bulk actions).
        Waiting jobs are read group by group (not merged in run order): each call reads one
        bounded range, however large the backlog."""
        if state == "waiting":
            k = self.keys(queue)
            for group in await self._groups_of(queue):
                offset = 0
                while True:
                    ids = await self._range(k.waiting(group), offset, offset + batch - 1)
                    if ids:
                        yield await self.summaries(queue, ids)
                    if len(ids) < batch:
                        break
                    offset += batch
            return
        offset = 0
        while True:
            ids = await self.list_ids(queue, state, offset, batch, newest_first=False)
            if not ids:
                return
            yield await self.summaries(queue, ids)
            if len(ids) < batch:
                return
            offset += batch

    @redis_errors
    async def _range(self, key: str, start: int, end: int) -> list[str]:
        return cast(list[str], await self.client.zrange(key, start, end))

    @redis_errors
    async def server_info(self, section: str) -> dict[str, Any]:
        return await self.client.info(section)
