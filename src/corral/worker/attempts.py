"""Running one claimed job: its context (progress, logs, cancellation), its handler in its mode
with its timeout, and what became of it, handed to the recorder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from corral.context import JobContext
from corral.definition import JobDefinition, JobFunction
from corral.engine import Claimed
from corral.engine.ports import WorkerEngine
from corral.engine.schema import json_value
from corral.errors import Retry, StalePayload
from corral.models import DeadReason, JobEvent
from corral.worker.limits import NameLimits
from corral.worker.outcomes import Recorded, Recorder
from corral.worker.runners import Runners
from corral.worker.running import Running
from corral.worker.stats import WorkerStats
from corral.worker.updates import Updates

log = logging.getLogger(__name__)
COMPLETED = Recorded("completed")  # made once: most attempts complete, and no hook wants more


class Attempts:
    """Starts claimed jobs and runs each attempt to its outcome."""

    def __init__(
        self,
        registry: Mapping[str, JobFunction[Any, Any]],
        runners: Runners,
        recorder: Recorder,
        running: dict[str, Running],
        stats: WorkerStats,
        finished: asyncio.Event,
        limits: NameLimits,
    ) -> None:
        self._registry = registry
        self._limits = limits
        self._runners = runners
        self._recorder = recorder
        self._done = recorder.done
        self._running = running
        self.stats = stats
        self._wake = finished  # set whenever a job ends: the fetch loop has a free slot
        self._background: set[asyncio.Task[Any]] = set()
        self.observe: Callable[[JobEvent], None] | None = None  # the App's hooks, if any

    def start(self, engine: WorkerEngine, queue: str, job: Claimed) -> None:
        """Run a claimed job in a task of its own."""
        updates = Updates(engine, queue, job, self._background, asyncio.get_running_loop())
        ctx = JobContext(
            id=job.id,
            queue=queue,
            name=job.name,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            group=job.group or None,
            writer=updates.write,
            reschedules=job.reschedules,
        )
        task = asyncio.create_task(self._execute(engine, queue, job, ctx, updates))
        self._running[job.id] = Running(queue, job, ctx, task)
        self.stats.started += 1
        self.stats.by_job[job.name] += 1

    async def _execute(
        self, engine: WorkerEngine, queue: str, job: Claimed, ctx: JobContext, updates: Updates
    ) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        started_at = datetime.now(UTC) if self.observe is not None else None
        recorded: Recorded | None = None
        if log.isEnabledFor(logging.DEBUG):
            log.debug("started %s", _describe(queue, job), extra=_fields(queue, job, "started"))
        try:
            recorded = await self._attempt(engine, queue, job, ctx, updates)
        except asyncio.CancelledError:
            run = self._running.get(job.id)
            if run is not None and run.cancel_requested:
                recorded = await self._recorder.cancelled(engine, queue, job)
            # otherwise shutdown or a lost lease: the job is released or re-leased elsewhere
        except Exception:
            log.exception("job %s: could not record its outcome; its lease will expire", job.id)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()
        if recorded is None:
            return
        elapsed = loop.time() - began
        if log.isEnabledFor(logging.INFO):
            ms = elapsed * 1000
            fields = _fields(queue, job, recorded.outcome)
            fields["corral"]["duration_ms"] = round(ms, 1)
            # made and handed over directly: Logger.info would look up the caller's frame for
            # every job, a cost a drain feels and that no format here prints
            record = log.makeRecord(
                log.name, logging.INFO, __file__, 0, "%s %s in %.0fms",
                (recorded.outcome, _describe(queue, job), ms), None, extra=fields,
            )  # fmt: skip
            log.handle(record)
        if self.observe is not None and started_at is not None:
            self._tell(queue, job, recorded, started_at, elapsed)

    def _tell(
        self, queue: str, job: Claimed, recorded: Recorded, started_at: datetime, elapsed: float
    ) -> None:
        """Hooks hear of an outcome once it is recorded: a completion when it is acknowledged
        (with the next claim), anything else now."""
        assert self.observe is not None
        event = JobEvent(
            queue=queue,
            job_id=job.id,
            name=job.name,
            group=job.group or None,
            attempt=job.attempt,
            max_attempts=job.max_attempts,
            outcome=recorded.outcome,
            worker=self._recorder.worker_id,
            started_at=started_at,
            duration=timedelta(seconds=elapsed),
            error=recorded.error,
            dead_reason=recorded.reason,
            result=json_value(recorded.result_json),
        )
        if recorded.outcome == "completed":
            self._recorder.awaiting[job.id] = event
        else:
            self.observe(event)

    async def _attempt(
        self, engine: WorkerEngine, queue: str, job: Claimed, ctx: JobContext, updates: Updates
    ) -> Recorded | None:
        """Run the attempt; what became of it (None: it was cancelled here, mid-way)."""
        job_fn = self._registry.get(job.name)
        if job_fn is None:
            return await self._recorder.unknown(engine, queue, job)
        definition = job_fn.definition
        overrides = job.overrides  # the job's own options, when they differ from its definition
        timeout = definition.timeout_s
        if overrides is not None:
            timeout = None if overrides.timeout is None else overrides.timeout.total_seconds()
        try:
            try:
                gate = self._limits.gate(job.name)
                if gate is None:
                    result = await self._runners.run(definition, job.payload, ctx, timeout)
                else:
                    result = await self._gated(gate, job, definition, ctx, timeout)
            finally:
                run = self._running.get(job.id)
                if run is not None:
                    run.recording = True
                if updates.pending:  # progress/logs land before the outcome is recorded
                    await updates.flush()
        except StalePayload as exc:
            return await self._recorder.dead(
                engine, queue, job, "InvalidPayload", str(exc), DeadReason.INVALID_PAYLOAD
            )
        except Retry as exc:
            return await self._recorder.rescheduled(engine, queue, job, exc)
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit or KeyboardInterrupt from a handler too:
            # one job's sys.exit() must not take the worker and its other jobs down with it
            return await self._recorder.failed(engine, queue, job, exc, definition.options.retry)
        # Done before a cancellation or a lost lease stopped it: the completion is written
        # (fenced by the token) and stands, like any write that raced such a signal.
        self._done.setdefault(queue, []).append((job.id, job.token, result))
        return COMPLETED if self.observe is None else Recorded("completed", result_json=result)

    async def _gated(
        self,
        gate: asyncio.Semaphore,
        job: Claimed,
        definition: JobDefinition,
        ctx: JobContext,
        timeout: float | None,
    ) -> str:
        """Run the handler once its name is under its limit (the timeout starts then)."""
        run = self._running.get(job.id)
        if run is not None and gate.locked():
            run.queued = True
        async with gate:
            if run is not None:
                run.queued = False
            return await self._runners.run(definition, job.payload, ctx, timeout)


def _describe(queue: str, job: Claimed) -> str:
    group = f" group {job.group}" if job.group else ""
    return f"{queue}/{job.name} {job.id} attempt {job.attempt}/{job.max_attempts}{group}"


def _fields(queue: str, job: Claimed, outcome: str) -> dict[str, dict[str, Any]]:
    """The per-job log line's data, as ``extra``: the JSON log format prints them as keys."""
    return {
        "corral": {
            "queue": queue,
            "job": job.name,
            "job_id": job.id,
            "group": job.group or None,
            "attempt": job.attempt,
            "max_attempts": job.max_attempts,
            "outcome": outcome,
        }
    }
