"""Operator transitions and readers: cancel, remove, promote, replay, drain, clean, obliterate,
listing and finding jobs. Every write is a Lua script with bounded work per call; the loops that
call them again live in the queue layer, so one call never blocks Redis for long."""

from __future__ import annotations

import heapq
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

from redis.exceptions import RedisError

from corral.engine.errors import corral_error, redis_errors
from corral.engine.keys import registry_key
from corral.engine.redis import Engine

LISTABLE = ("waiting", "delayed", "active", "completed", "dead")
SUMMARY_FIELDS = ("n", "st", "g", "p", "a", "ma", "ct", "sa", "fa", "le", "dr", "wk", "rs")


class Ops:
    """Operator access to one Redis database, built on an Engine's client and scripts."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.client = engine.client

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        return await self.engine._run(name, queue, args)

    # -- transitions ---------------------------------------------------------------------------

    @redis_errors
    async def cancel(self, queue: str, job_id: str, who: str, why: str) -> int:
        """1 cancelled, 2 signalled to its worker, 0 already ended, -1 no such job."""
        return int(await self._run("cancel", queue, [job_id, who, why]))

    @redis_errors
    async def remove(self, queue: str, job_id: str) -> int:
        """1 removed, 0 no such job, -2 refused because it is running."""
        return int(await self._run("remove", queue, [job_id]))

    @redis_errors
    async def promote(self, queue: str, job_id: str) -> int:
        """1 promoted, 0 not delayed, -1 no such job."""
        return int(await self._run("promote", queue, [job_id]))

    @redis_errors
    async def replay(self, queue: str, ids: Sequence[str], who: str, payload: str = "") -> int:
        if payload and len(ids) != 1:
            raise ValueError("an edited payload replays exactly one job")
        return int(await self._run("replay", queue, [who, payload, len(ids), *ids]))

    @redis_errors
    async def reprioritize(self, queue: str, job_id: str, priority: int) -> int:
        """1 changed, 0 not waiting or delayed, -1 no such job."""
        return int(await self._run("reprioritize", queue, [job_id, priority]))

    @redis_errors
    async def job_exists(self, queue: str, job_id: str) -> bool:
        return bool(await self.client.exists(self.engine.keys(queue).job(job_id)))

    @redis_errors
    async def drain_step(self, queue: str, limit: int = 500) -> tuple[int, int]:
        removed, remaining = await self._run("drain", queue, [limit])
        return int(removed), int(remaining)

    @redis_errors
    async def clean_step(
        self, queue: str, state: str, cutoff_ms: int, start: int, batch: int = 200
    ) -> tuple[int, int]:
        removed, nxt = await self._run("clean", queue, [state, cutoff_ms, start, batch])
        return int(removed), int(nxt)

    @redis_errors
    async def obliterate_step(self, queue: str, count: int = 500) -> int:
        """Unlink up to ``count`` keys of the queue; returns how many (0 when none are left)."""
        k = self.engine.keys(queue)
        pattern = k.base.replace("[", "\\[").replace("?", "\\?").replace("*", "\\*") + "*"
        meta_pattern = k.meta
        # One SCAN page only covers part of the keyspace: page on until some keys of the queue
        # turn up or the whole keyspace was scanned, or other keys would hide the queue's.
        found: dict[str, None] = {}  # SCAN may return a key twice
        cursor = 0
        while True:
            cursor, page = await self.client.scan(cursor, match=pattern, count=count * 10)
            found.update((key, None) for key in cast(list[str], page) if key != meta_pattern)
            if len(found) >= count or cursor == 0:
                break
        keys = list(found)
        if keys:
            await self.client.unlink(*keys[:count])
            return min(len(keys), count)
        await self.client.unlink(meta_pattern)
        await self.client.srem(registry_key(self.engine.prefix), queue)
        self.engine._registered.discard(queue)
        return 0

    # -- readers -------------------------------------------------------------------------------

    @redis_errors
    async def groups_of(self, queue: str) -> list[str]:
        names = cast(set[str], await self.client.smembers(self.engine.keys(queue).base + "groups"))
        return ["", *sorted(names)]

    @redis_errors
    async def list_ids(
        self, queue: str, state: str, offset: int, limit: int, newest_first: bool
    ) -> list[str]:
        """Ids of jobs in one state, paged. Waiting jobs are merged across groups in the order
        they would run (priority, then FIFO); ``newest_first`` reverses every state."""
        if state not in LISTABLE:
            raise ValueError(f"state must be one of {', '.join(LISTABLE)}, got {state!r}")
        k = self.engine.keys(queue)
        if state != "waiting":
            key = getattr(k, state)
            end = offset + limit - 1
            if newest_first:
                return cast(list[str], await self.client.zrevrange(key, offset, end))
            return cast(list[str], await self.client.zrange(key, offset, end))
        pipe = self.client.pipeline(transaction=False)
        for g in await self.groups_of(queue):
            if newest_first:
                pipe.zrevrange(k.waiting(g), 0, offset + limit - 1, withscores=True)
            else:
                pipe.zrange(k.waiting(g), 0, offset + limit - 1, withscores=True)
        runs: list[list[tuple[str, float]]] = await pipe.execute()
        merged = heapq.merge(*runs, key=lambda p: -p[1] if newest_first else p[1])
        return [job_id for job_id, _ in list(merged)[offset : offset + limit]]

    @redis_errors
    async def summaries(self, queue: str, ids: Sequence[str]) -> list[dict[str, str]]:
        """The listing fields of several jobs in one round trip (missing jobs are skipped)."""
        k = self.engine.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hmget(k.job(job_id), list(SUMMARY_FIELDS))
        rows: list[list[str | None]] = await pipe.execute()
        out = []
        for job_id, row in zip(ids, rows, strict=True):
            if any(v is not None for v in row):
                fields = {f: v for f, v in zip(SUMMARY_FIELDS, row, strict=True) if v is not None}
                out.append({"id": job_id, **fields})
        return out

    async def scan_state(
        self, queue: str, state: str, batch: int = 500
    ) -> AsyncIterator[list[dict[str, str]]]:
        """Every job of a state, as summaries, a batch at a time (for find and bulk actions).
        Waiting jobs are read group by group (not merged in run order): each call reads one
        bounded range, however large the backlog."""
        if state == "waiting":
            k = self.engine.keys(queue)
            for group in await self.groups_of(queue):
                offset = 0
                while True:
                    ids = cast(
                        list[str],
                        await self.client.zrange(k.waiting(group), offset, offset + batch - 1),
                    )
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

    async def cancel_signals(self, queues: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        """(queue, job id) for every cancellation of a running job, as it is published."""
        channels = {self.engine.keys(q).base + "cancel": q for q in queues}
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(*channels)
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if msg is not None and msg.get("type") == "message":
                    yield channels[msg["channel"]], str(msg["data"])
        except (RedisError, OSError) as exc:
            raise corral_error(exc, self.engine.where) from exc
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
