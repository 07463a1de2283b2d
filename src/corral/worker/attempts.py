"""Running one claimed job: its context (progress, logs, cancellation), its handler in its mode
with its timeout, and what became of it, handed to the recorder."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from corral.context import JobContext
from corral.definition import JobDefinition, JobFunction
from corral.engine import Claimed
from corral.engine.ports import WorkerEngine
from corral.errors import Retry, StalePayload
from corral.models import DeadReason
from corral.worker.limits import NameLimits
from corral.worker.outcomes import Recorder
from corral.worker.runners import Runners
from corral.worker.running import Running
from corral.worker.stats import WorkerStats
from corral.worker.updates import Updates

log = logging.getLogger(__name__)


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
        try:
            await self._attempt(engine, queue, job, ctx, updates)
        except asyncio.CancelledError:
            run = self._running.get(job.id)
            if run is not None and run.cancel_requested:
                await self._recorder.cancelled(engine, queue, job)
            # otherwise shutdown or a lost lease: the job is released or re-leased elsewhere
        except Exception:
            log.exception("job %s: could not record its outcome; its lease will expire", job.id)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    async def _attempt(
        self, engine: WorkerEngine, queue: str, job: Claimed, ctx: JobContext, updates: Updates
    ) -> None:
        job_fn = self._registry.get(job.name)
        if job_fn is None:
            await self._recorder.unknown(engine, queue, job)
            return
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
                if updates.pending:  # progress/logs land before the outcome is recorded
                    await updates.flush()
        except StalePayload as exc:
            await self._recorder.dead(
                engine, queue, job, "InvalidPayload", str(exc), DeadReason.INVALID_PAYLOAD
            )
            return
        except Retry as exc:
            await self._recorder.rescheduled(engine, queue, job, exc)
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit or KeyboardInterrupt from a handler too:
            # one job's sys.exit() must not take the worker and its other jobs down with it
            await self._recorder.failed(engine, queue, job, exc, definition.options.retry)
            return
        if ctx.cancelled:
            return
        self._done.setdefault(queue, []).append((job.id, job.token, result))

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
