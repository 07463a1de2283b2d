"""The reader's part of the engine: jobs, listings, counts, groups and queues as read models."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import cast

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
    decode_worker,
    number,
)
from corral.models import GroupState, JobInfo, JobState, JobSummary, QueueCounts, WorkerInfo

LISTABLE = ("waiting", "delayed", "active", "completed", "dead")
TIMED = ("delayed", "active")  # states whose set's score a listing hands up (due, lease)


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
        pipe.zscore(k.delayed, job_id)
        pipe.zscore(k.active, job_id)
        raw, payload, due, lease = await pipe.execute()
        return decode_job(queue, job_id, raw, payload, due, lease) if raw else None

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
    async def group_names(self, queue: str) -> list[str]:
        """Every group the queue knows, by name: with waiting or running jobs, paused, or with
        settings of its own (a paused group keeps its pause after its last job has left)."""
        k = self.keys(queue)
        names: set[str] = set()
        for key in (k.groups, k.gpaused):
            names.update([str(n) async for n in self.client.sscan_iter(key, count=500)])
        for key in (k.glimit, k.grate, k.gweight):  # no HSCAN NOVALUES: Redis 7.4 and up only
            names.update([str(n) async for n, _ in self.client.hscan_iter(key, count=500)])
        return sorted(names)

    @redis_errors
    async def group_known(self, queue: str, group: str) -> bool:
        """Whether ``group_names`` would list it."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.sismember(k.groups, group)
        pipe.sismember(k.gpaused, group)
        for key in (k.glimit, k.grate, k.gweight):
            pipe.hexists(key, group)
        return any(await pipe.execute())

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
    async def list_jobs(
        self, queue: str, state: str, offset: int, limit: int, newest_first: bool
    ) -> list[JobSummary]:
        """One page of a state's jobs as summaries; delayed and active ones with the score
        the listing read anyway (due time, lease deadline)."""
        if state not in TIMED:
            return await self.summaries(
                queue, await self.list_ids(queue, state, offset, limit, newest_first)
            )
        scored = await self._scored(self.keys(queue).state_set(state), offset, limit, newest_first)
        return await self.summaries(queue, list(scored), scored)

    @redis_errors
    async def _scored(
        self, key: str, offset: int, limit: int, newest_first: bool
    ) -> dict[str, float]:
        end = offset + limit - 1
        if newest_first:
            rows = await self.client.zrevrange(key, offset, end, withscores=True)
        else:
            rows = await self.client.zrange(key, offset, end, withscores=True)
        return dict(cast(list[tuple[str, float]], rows))

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
    async def summaries(
        self, queue: str, ids: Sequence[str], scores: Mapping[str, float] | None = None
    ) -> list[JobSummary]:
        """The listing fields of several jobs in one round trip (missing jobs are skipped);
        ``scores``: their scores in the delayed or active set they were listed from."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(k.job(job_id), list(SUMMARY_FIELDS))
        rows: list[list[str | None]] = await pipe.execute()
        score = (scores or {}).get
        found = (
            decode_summary(job_id, row, score(job_id))
            for job_id, row in zip(ids, rows, strict=True)
        )
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
            if state in TIMED:
                scored = await self._scored(self.keys(queue).state_set(state), offset, batch, False)
                ids = list(scored)
            else:
                scored = None
                ids = await self.list_ids(queue, state, offset, batch, newest_first=False)
            if not ids:
                return
            yield await self.summaries(queue, ids, scored)
            if len(ids) < batch:
                return
            offset += batch

    @redis_errors
    async def _range(self, key: str, start: int, end: int) -> list[str]:
        return cast(list[str], await self.client.zrange(key, start, end))

    async def workers(self) -> list[WorkerInfo]:
        """The live workers, by id; the entries of workers that are gone (three heartbeats
        missed) are dropped on the way."""
        k = self.worker_keys
        reply = await self._run_on("workers", [k.info, k.alive], ["list"])
        found = (
            decode_worker(str(reply[i]), str(reply[i + 2]), reply[i + 1])
            for i in range(1, len(reply), 3)
        )
        return sorted((w for w in found if w is not None), key=lambda w: w.id)
