"""Recording what became of each attempt: completed (acknowledged in batches with the next
claim), failed (retry or dead), rescheduled, handed back (a job nobody here knows), cancelled,
or released at shutdown. Every write is fenced by the job's token, so retrying it through a
Redis outage is safe."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal, TypeVar

from corral.engine import Claimed
from corral.engine.outcomes import Deferred, Failed, Rescheduled
from corral.engine.ports import WorkerEngine
from corral.errors import ConnectionLost, CorralError, RateLimited, Retry
from corral.models import DeadReason, ErrorRecord, JobEvent
from corral.retry import RetryPolicy
from corral.worker.decisions import decide, error_record, plain_error
from corral.worker.process import RemoteError
from corral.worker.running import Running
from corral.worker.stats import WorkerStats

log = logging.getLogger(__name__)

PERSIST_FOR_S = 120.0
UNKNOWN_FIRST_DELAY_MS = 1000
T = TypeVar("T")
Done = tuple[str, str, str]  # job id, token, result JSON
Outcome = Literal[
    "completed", "retried", "rescheduled", "deferred", "dead", "cancelled", "lease_lost"
]
"""What became of an attempt (the worker's per-job log line says it; so do its hooks)."""


@dataclass(frozen=True, slots=True)
class Recorded:
    """What a write recorded: the outcome, the error it stored, why the job is dead."""

    outcome: Outcome
    error: ErrorRecord | None = None
    reason: str | None = None
    result_json: str | None = None  # completed: the handler's result, as stored


class Recorder:
    """One worker's outcome writes, and its completed jobs waiting to be acknowledged."""

    def __init__(
        self, worker_id: str, stats: WorkerStats, force: asyncio.Event, unknown_grace_ms: int
    ) -> None:
        self.worker_id = worker_id
        self.stats = stats
        self._force = force
        self.unknown_grace_ms = unknown_grace_ms
        # completed jobs per queue, acknowledged with the next claim: appended to directly by
        # whoever ran them (a call per job is a cost a drain feels)
        self.done: dict[str, list[Done]] = {}
        self._unknown_names: set[str] = set()  # job names warned about, once each
        # with hooks: completed jobs' events, told once their completion is recorded
        self.observe: Callable[[JobEvent], None] | None = None
        self.awaiting: dict[str, JobEvent] = {}

    # -- completed jobs, acknowledged by the next pass (or the flush) ---------------------------

    def take(self, queue: str) -> list[Done]:
        return self.done.pop(queue, [])

    def restore(self, queue: str, done: list[Done]) -> None:
        """Put back acknowledgements whose call failed, for the next pass."""
        self.done.setdefault(queue, [])[:0] = done

    @property
    def pending(self) -> bool:
        return bool(self.done)

    def has(self, queue: str) -> bool:
        return queue in self.done

    def acknowledged(self, done: Sequence[Done], flags: Sequence[bool]) -> None:
        completed = sum(flags)
        self.stats.completed += completed
        if completed < len(flags):
            for (job_id, _, _), ok in zip(done, flags, strict=True):
                if not ok:
                    self.stats.stale += 1
                    log.warning("job %s: late result discarded (lease was lost)", job_id)
        if self.awaiting:
            self._tell(done, flags)

    def _tell(self, done: Sequence[Done], flags: Sequence[bool]) -> None:
        assert self.observe is not None
        for (job_id, _, _), ok in zip(done, flags, strict=True):
            event = self.awaiting.pop(job_id, None)
            if event is not None:
                self.observe(event if ok else replace(event, outcome="lease_lost"))

    async def flush(self, engine: WorkerEngine) -> None:
        """Acknowledge every completed job now (at shutdown), through a Redis outage as long
        as ``persist`` retries; what still cannot be written stays pending for the next
        flush, and is said: those jobs run again once their leases run out."""
        while self.done:
            queue, done = self.done.popitem()

            def write(q: str = queue, d: list[Done] = done) -> Awaitable[list[bool]]:
                return engine.complete(q, d)

            try:
                flags = await self.persist(write)
            except CorralError as exc:
                self.restore(queue, done)
                log.error(
                    "could not acknowledge %d completed job(s) on %s: %s; they run again once "
                    "their leases run out",
                    len(done),
                    queue,
                    exc,
                )
                return
            self.acknowledged(done, flags)

    # -- other outcomes -------------------------------------------------------------------------

    async def persist(self, write: Callable[[], Awaitable[T]]) -> T:
        """Retry an outcome write through a Redis outage. Retrying is safe: the write is fenced
        by the job's token. After PERSIST_FOR the job is left to the reaper (run again)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + PERSIST_FOR_S
        pause = 0.1
        while True:
            try:
                return await write()
            except ConnectionLost:
                if loop.time() > deadline or self._force.is_set():
                    raise
                log.warning("Redis unreachable; retrying a job outcome in %.1fs", pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)

    async def failed(
        self,
        engine: WorkerEngine,
        queue: str,
        job: Claimed,
        exc: BaseException,
        policy: RetryPolicy,
    ) -> Recorded:
        """A failed attempt: retry with the job's backoff (its own, else its definition's
        ``policy``'s) or dead when attempts are used up, it was Fatal, or the definition's
        policy classifies the error as fatal or not retryable."""
        self.stats.failed_attempts += 1
        chain: tuple[str, ...] | None = None
        if isinstance(exc, RemoteError):  # raised in a process-mode child, carried as text
            chain = exc.type_names
            error = ErrorRecord(
                job.attempt,
                exc.type_name,
                str(exc),
                exc.remote_traceback,
                None,
                self.worker_id,
                exc.type_names,
            )
        else:
            error = error_record(exc, job.attempt, self.worker_id)
        own = job.overrides.backoff if job.overrides is not None else None
        decision = decide(
            exc, job.attempt, job.max_attempts, own or policy.backoff, policy=policy, chain=chain
        )
        outcome = await self.persist(
            lambda: engine.fail(
                queue,
                job.id,
                job.token,
                error,
                retry_delay_ms=decision.retry_ms,
                reason=decision.reason,
            )
        )
        if outcome is Failed.REFUSED:
            self.stats.stale += 1
            log.warning("job %s: failure not recorded, the lease was lost", job.id)
            return Recorded("lease_lost", error)
        if outcome is Failed.CANCELLED:
            return self._cancelled_instead(job, error)
        if decision.retry_ms is None:
            self.stats.dead += 1
            self.stats.dead_reasons[decision.reason] += 1
            return Recorded("dead", error, decision.reason)
        self.stats.retried += 1
        return Recorded("retried", error)

    async def rescheduled(
        self, engine: WorkerEngine, queue: str, job: Claimed, exc: Retry
    ) -> Recorded:
        """The handler asked to run again later (``Retry``), or to hold its group back
        (``RateLimited``): not a failed attempt."""
        delay_ms = int(exc.delay.total_seconds() * 1000)
        hold_ms = delay_ms if isinstance(exc, RateLimited) else 0
        outcome = await self.persist(
            lambda: engine.reschedule(
                queue, job.id, job.token, 0 if hold_ms else delay_ms, str(exc), hold_ms
            )
        )
        if outcome is Rescheduled.RESCHEDULED:
            self.stats.rescheduled += 1
            return Recorded("rescheduled")
        if outcome is Rescheduled.CANCELLED:
            return self._cancelled_instead(job, None)
        if outcome is Rescheduled.DEAD:
            self.stats.dead += 1
            self.stats.dead_reasons[DeadReason.RESCHEDULED_TOO_OFTEN] += 1
            return Recorded("dead", None, DeadReason.RESCHEDULED_TOO_OFTEN)
        self.stats.stale += 1
        log.warning("job %s: retry not recorded, the lease was lost", job.id)
        return Recorded("lease_lost")

    async def unknown(self, engine: WorkerEngine, queue: str, job: Claimed) -> Recorded:
        """A job this worker's App does not define: hand it back for a worker that does (new
        producers deploy before new workers); dead ``unknown_job`` once the grace is over."""
        grace_s = self.unknown_grace_ms / 1000
        msg = f"no worker registered a job named {job.name!r} within {grace_s:g}s"
        error = plain_error("UnknownJob", msg, 0, self.worker_id)
        outcome = await self.persist(
            lambda: engine.defer(
                queue, job.id, job.token, UNKNOWN_FIRST_DELAY_MS, self.unknown_grace_ms, error
            )
        )
        if outcome is Deferred.DEFERRED:
            self.stats.deferred += 1
            if job.name not in self._unknown_names:
                self._unknown_names.add(job.name)
                log.warning(
                    "job %s: no job named %r in this App; handed back for a worker that has it "
                    "(dead after %gs)",
                    job.id,
                    job.name,
                    grace_s,
                )
            return Recorded("deferred")
        if outcome is Deferred.CANCELLED:
            return self._cancelled_instead(job, None)
        if outcome is Deferred.DEAD:
            self.stats.dead += 1
            self.stats.dead_reasons[DeadReason.UNKNOWN_JOB] += 1
            log.warning("job %s is dead (%s): %s", job.id, DeadReason.UNKNOWN_JOB, msg)
            return Recorded("dead", error, DeadReason.UNKNOWN_JOB)
        return Recorded("lease_lost")

    async def dead(
        self,
        engine: WorkerEngine,
        queue: str,
        job: Claimed,
        type_name: str,
        message: str,
        reason: str,
    ) -> Recorded:
        """A job that cannot run at all: straight to the dead set with a readable reason."""
        error = plain_error(type_name, message, job.attempt, self.worker_id)
        dead = await self.persist(
            lambda: engine.fail(queue, job.id, job.token, error, retry_delay_ms=None, reason=reason)
        )
        if dead is Failed.REFUSED:
            return Recorded("lease_lost", error)
        self.stats.dead += 1
        self.stats.dead_reasons[reason] += 1
        log.warning("job %s is dead (%s): %s", job.id, reason, message)
        return Recorded("dead", error, reason)

    async def cancelled(self, engine: WorkerEngine, queue: str, job: Claimed) -> Recorded:
        """A running job stopped because its cancellation was asked: it ends cancelled."""
        asked = await self.persist(lambda: engine.cancellation(queue, job.id))
        who, why = (asked.by, asked.reason) if asked is not None else ("?", "")
        message = f"cancelled while running by {who}" + (f": {why}" if why else "")
        error = plain_error("Cancelled", message, job.attempt, self.worker_id)
        reason = DeadReason.CANCELLED
        if await self.persist(
            lambda: engine.fail(queue, job.id, job.token, error, retry_delay_ms=None, reason=reason)
        ):
            self.stats.cancelled += 1
            return Recorded("cancelled", error, DeadReason.CANCELLED)
        return Recorded("lease_lost", error)

    def _cancelled_instead(self, job: Claimed, error: ErrorRecord | None) -> Recorded:
        """The attempt ended some other way (it failed, asked to run later, was unknown here)
        just as its cancellation was asked: the script ended it cancelled instead."""
        self.stats.cancelled += 1
        log.info("job %s: cancelled while running (its cancellation was asked)", job.id)
        return Recorded("cancelled", error, DeadReason.CANCELLED)

    async def release(self, engine: WorkerEngine, runs: Sequence[Running]) -> None:
        """Hand jobs still running at the end of shutdown back to waiting (not counted)."""
        by_queue: dict[str, list[tuple[str, str]]] = {}
        for run in runs:
            by_queue.setdefault(run.queue, []).append((run.job.id, run.job.token))
        for queue, items in by_queue.items():
            try:
                self.stats.released += await engine.release(queue, items)
            except CorralError as exc:
                log.error("could not hand back %d job(s) on %s: %s", len(items), queue, exc)
