"""The operator's part of the engine: cancel, remove, promote, replay, reprioritize, pause,
configure, and the bounded steps of drain, clean and obliterate (the loops that call them again
live in the queue layer, so one call never blocks Redis for long)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from corral.engine.base import EngineBase
from corral.engine.errors import redis_errors
from corral.engine.outcomes import Cancelled, Promoted, Removed, Reprioritized
from corral.engine.schema import QUEUE_MAX_JOBS, QUEUE_SETTINGS


class Operator(EngineBase):
    async def cancel(self, queue: str, job_id: str, who: str, why: str) -> Cancelled:
        return Cancelled(int(await self._run("cancel", queue, [job_id, who, why])))

    async def remove(self, queue: str, job_id: str) -> Removed:
        return Removed(int(await self._run("remove", queue, [job_id])))

    async def promote(self, queue: str, job_id: str) -> Promoted:
        return Promoted(int(await self._run("promote", queue, [job_id])))

    async def replay(self, queue: str, ids: Sequence[str], who: str, payload: str = "") -> int:
        """Dead jobs back to waiting with fresh attempts; how many (others are skipped)."""
        if payload and len(ids) != 1:
            raise ValueError("an edited payload replays exactly one job")
        return int(await self._run("replay", queue, [who, payload, len(ids), *ids]))

    async def reprioritize(self, queue: str, job_id: str, priority: int) -> Reprioritized:
        return Reprioritized(int(await self._run("reprioritize", queue, [job_id, priority])))

    async def drain_step(self, queue: str, limit: int = 500) -> tuple[int, int]:
        """Delete up to ``limit`` waiting/delayed jobs: (removed, remaining)."""
        removed, remaining = await self._run("drain", queue, [limit])
        return int(removed), int(remaining)

    async def clean_step(
        self, queue: str, state: str, cutoff_ms: int, start: int, batch: int = 200
    ) -> tuple[int, int]:
        """Delete ended jobs that finished before ``cutoff_ms``: (removed, next start or -1)."""
        removed, nxt = await self._run("clean", queue, [state, cutoff_ms, start, batch])
        return int(removed), int(nxt)

    @redis_errors
    async def obliterate_step(self, queue: str, count: int = 500) -> int:
        """Unlink up to ``count`` keys of the queue; returns how many (0 when none are left)."""
        k = self.keys(queue)
        pattern = k.scan_pattern()
        # One SCAN page only covers part of the keyspace: page on until some keys of the queue
        # turn up or the whole keyspace was scanned, or other keys would hide the queue's.
        found: dict[str, None] = {}  # SCAN may return a key twice
        cursor = 0
        while True:
            cursor, page = await self.client.scan(cursor, match=pattern, count=count * 10)
            found.update((key, None) for key in cast(list[str], page) if key != k.meta)
            if len(found) >= count or cursor == 0:
                break
        keys = list(found)
        if keys:
            await self.client.unlink(*keys[:count])
            return min(len(keys), count)
        await self.client.unlink(k.meta)
        await self.client.srem(self.registry, queue)
        self._registered.discard(queue)
        return 0

    async def group_action(
        self,
        queue: str,
        action: str,
        group: str,
        *,
        concurrency: str = "",
        rate: str = "",
        weight: str = "",
    ) -> bool:
        """pause / resume / limits of one group ('' keeps a setting, '-' removes it); True if
        the group is ready to be served afterwards."""
        args = [action, group, concurrency, rate, weight]
        return int(await self._run("groups", queue, args)) == 1

    async def refresh_groups(self, queue: str, groups: Sequence[str]) -> int:
        """After queue-wide limits changed: these groups, if now under their limits, are
        served again; how many."""
        return int(await self._run("groups", queue, ["refresh", *groups])) if groups else 0

    @redis_errors
    async def set_paused(self, queue: str, paused: bool) -> None:
        k = self.keys(queue)
        if paused:
            await self.client.hset(k.meta, "paused", "1")
        else:
            await self.client.hdel(k.meta, "paused")
            await self.client.zadd(k.marker, {"m": 0})

    @redis_errors
    async def configure(self, queue: str, **settings: int) -> None:
        """Queue-wide settings (``schema.QUEUE_SETTINGS``); configuring declares the queue."""
        unknown = set(settings) - QUEUE_SETTINGS
        if unknown:
            raise ValueError(f"unknown queue setting(s): {sorted(unknown)}")
        await self._declare(queue)
        fields: dict[str | bytes, int] = {name: value for name, value in settings.items()}
        await self.client.hset(self.keys(queue).meta, mapping=fields)  # type: ignore[arg-type]

    @redis_errors
    async def set_max_jobs(self, queue: str, max_jobs: int | None) -> None:
        """Cap the queue's waiting + delayed jobs (enqueue refuses past it); None removes the
        cap, so enqueue does not count at all. Declares the queue."""
        await self._declare(queue)
        meta = self.keys(queue).meta
        if max_jobs is None:
            await self.client.hdel(meta, QUEUE_MAX_JOBS)
        else:
            await self.client.hset(meta, QUEUE_MAX_JOBS, max_jobs)
