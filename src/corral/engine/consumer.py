"""The worker's part of the engine: claim, acknowledge, fail, hand back, keep leases, wait."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Any

from redis.exceptions import RedisError

from corral.engine.base import EngineBase
from corral.engine.errors import corral_error, redis_errors
from corral.engine.outcomes import Deferred, Failed, Rescheduled
from corral.engine.schema import (
    CANCELLATION,
    OverridesCache,
    decode_cancellation,
    decode_stalled_death,
    encode_error,
    encode_worker,
    worker_window_ms,
)
from corral.engine.wire import ClaimResult, Reaped, parse_claim
from corral.models import Cancellation, ErrorRecord, WorkerInfo

PROMOTE_PER_CLAIM = 1000  # due delayed jobs moved to waiting by one claim, at most


class Consumer(EngineBase):
    _overrides: OverridesCache | None = None

    def _claim_args(
        self, n: int, worker: str, lease_ms: int, promote: int = PROMOTE_PER_CLAIM
    ) -> list[Any]:
        return [n, worker, lease_ms, promote]

    def _parse_claim(self, raw: list[Any]) -> ClaimResult:
        if self._overrides is None:
            self._overrides = OverridesCache()
        return parse_claim(raw, self._overrides)

    async def claim(
        self, queue: str, n: int, worker: str, lease_ms: int, promote: int = PROMOTE_PER_CLAIM
    ) -> ClaimResult:
        """Lease up to ``n`` jobs (after moving up to ``promote`` due delayed jobs to waiting)."""
        raw = await self._run("claim", queue, self._claim_args(n, worker, lease_ms, promote))
        return self._parse_claim(raw)

    async def complete(self, queue: str, done: Sequence[tuple[str, str, str]]) -> list[bool]:
        """``done``: (id, token, result JSON) per job; True per job recorded, False refused
        (its lease was lost)."""
        args: list[Any] = [len(done)]
        for item in done:
            args.extend(item)
        return [int(f) == 1 for f in await self._run("complete", queue, args)]

    async def complete_and_claim(
        self,
        queue: str,
        done: Sequence[tuple[str, str, str]],
        n: int,
        worker: str,
        lease_ms: int,
    ) -> tuple[list[bool], ClaimResult | None]:
        """Acknowledge finished jobs and lease new ones in a single round trip."""
        calls: list[tuple[str, str, list[Any]]] = []
        if done:
            args: list[Any] = [len(done)]
            for item in done:
                args.extend(item)
            calls.append(("complete", queue, args))
        if n > 0:
            calls.append(("claim", queue, self._claim_args(n, worker, lease_ms)))
        if not calls:
            return [], None
        results = await self._run_many(calls)
        flags = [int(f) == 1 for f in results[0]] if done else []
        claim = self._parse_claim(results[-1]) if n > 0 else None
        return flags, claim

    async def fail(
        self,
        queue: str,
        job_id: str,
        token: str,
        error: ErrorRecord,
        *,
        retry_delay_ms: int | None,
        reason: str = "",
    ) -> Failed:
        """A failed attempt: retry after ``retry_delay_ms`` or, when None, dead with
        ``reason``; CANCELLED instead of a retry when its cancellation was asked while it
        ran, REFUSED when the lease was lost."""
        action = "dead" if retry_delay_ms is None else "retry"
        args = [job_id, token, encode_error(error), action, retry_delay_ms or 0, reason]
        return Failed(int(await self._run("fail", queue, args)))

    async def reschedule(
        self, queue: str, job_id: str, token: str, delay_ms: int, message: str, hold_ms: int = 0
    ) -> Rescheduled:
        args = [job_id, token, delay_ms, message, hold_ms]
        return Rescheduled(int(await self._run("reschedule", queue, args)))

    async def defer(
        self,
        queue: str,
        job_id: str,
        token: str,
        delay_ms: int,
        grace_ms: int,
        error: ErrorRecord,
    ) -> Deferred:
        """Hand back a job whose name this worker does not know (see ``defer.lua``)."""
        args = [job_id, token, delay_ms, grace_ms, encode_error(error)]
        return Deferred(int(await self._run("defer", queue, args)))

    async def release(self, queue: str, items: Sequence[tuple[str, str]]) -> int:
        """Hand running jobs back to waiting (shutdown); how many went back."""
        args: list[Any] = [len(items)]
        for item in items:
            args.extend(item)
        return int(await self._run("release", queue, args))

    async def heartbeat(
        self, queue: str, lease_ms: int, items: Sequence[tuple[str, str]]
    ) -> tuple[list[str], list[str]]:
        """Extend leases; returns (ids whose lease is lost, ids whose cancellation was asked)."""
        args: list[Any] = [lease_ms, len(items)]
        for item in items:
            args.extend(item)
        lost, cancel = await self._run("heartbeat", queue, args)
        return list(lost), list(cancel)

    async def reap(self, queue: str, limit: int = 500, reaper: str = "") -> Reaped:
        """Expired leases back to waiting (or dead past max_stalls); the deaths as events
        (``reaper``: the worker asking, named when the job's own is not known)."""
        reply = await self._run("reap", queue, [limit])
        deaths = tuple(
            decode_stalled_death(queue, [str(v) for v in reply[i : i + 8]], reaper)
            for i in range(2, len(reply), 8)
        )
        return Reaped(int(reply[0]), int(reply[1]), deaths)

    async def touch(
        self,
        queue: str,
        job_id: str,
        token: str,
        *,
        progress_json: str = "",
        log_line: str = "",
        max_log_lines: int = 1000,
    ) -> bool:
        args = [job_id, token, progress_json, log_line, max_log_lines]
        return int(await self._run("touch", queue, args)) == 1

    async def register_worker(self, info: WorkerInfo) -> None:
        """Write this worker's entry in the registry of live workers; it counts as alive for
        three heartbeat intervals from now (by the server's clock)."""
        k = self.worker_keys
        args = ["beat", info.id, encode_worker(info), worker_window_ms(info)]
        await self._run_on("workers", [k.info, k.alive], args)

    async def unregister_worker(self, worker_id: str) -> None:
        """Remove this worker's entry (it is exiting)."""
        k = self.worker_keys
        await self._run_on("workers", [k.info, k.alive], ["leave", worker_id])

    @redis_errors
    async def wait_marker(self, queue: str, timeout_s: float) -> bool:
        """Block until a producer or a transition signals new work (or the timeout)."""
        got = await self.client.bzpopmin(self.keys(queue).marker, timeout=timeout_s)
        return got is not None

    @redis_errors
    async def signal(self, queue: str) -> None:
        """Re-post a wake-up marker this worker consumed but could not use."""
        await self.client.zadd(self.keys(queue).marker, {"m": 0})

    @redis_errors
    async def cancellation(self, queue: str, job_id: str) -> Cancellation | None:
        """Who asked for a running job to be cancelled, and why."""
        raw = await self.client.hget(self.keys(queue).job(job_id), CANCELLATION)
        return decode_cancellation(None if raw is None else str(raw))

    async def cancel_signals(self, queues: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        """(queue, job id) for every cancellation of a running job, as it is published."""
        channels = {self.keys(q).cancel: q for q in queues}
        pubsub = self.client.pubsub()
        try:
            await pubsub.subscribe(*channels)
            while True:
                msg = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if msg is not None and msg.get("type") == "message":
                    yield channels[msg["channel"]], str(msg["data"])
        except (RedisError, OSError) as exc:
            raise corral_error(exc, self.where) from exc
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]

    @redis_errors
    async def eviction_policy(self) -> str | None:
        """The server's maxmemory-policy (None when the server will not say)."""
        try:
            reply = await self.client.config_get("maxmemory-policy")
            return str(reply.get("maxmemory-policy")) if reply else None
        except RedisError:  # CONFIG is often disabled on managed servers; INFO is not
            info = await self.client.info("memory")
            policy = info.get("maxmemory_policy")
            return None if policy is None else str(policy)
