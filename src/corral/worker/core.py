"""The worker: claims jobs, runs them, acknowledges in batches, keeps leases alive.

One fetch loop per worker. Each pass acknowledges the jobs that finished since the last pass
and claims as many new ones as there are free slots, in one pipelined round trip per queue.
When there is nothing to do it blocks on the queues' wake-up markers, a finishing job, or the
next delayed job's due time, whichever comes first: no busy polling.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import ValidationError

from corral.codec import describe, from_json
from corral.context import JobContext
from corral.engine import Claimed, Engine
from corral.engine.keys import check_queue_name
from corral.engine.ops import Ops
from corral.errors import ConfigError, ConnectionLost, CorralError, RateLimited, Retry
from corral.ids import new_job_id
from corral.job import DeadReason
from corral.worker.order import QueueOrder
from corral.worker.outcome import decide, error_json, exception_json
from corral.worker.process import RemoteError
from corral.worker.runners import Runners
from corral.worker.stats import WorkerStats
from corral.worker.updates import Updates, cancel_and_wait

if TYPE_CHECKING:
    from corral.app import App
    from corral.jobs import JobFunction

log = logging.getLogger(__name__)

IDLE_WAIT_S = 5.0
PERSIST_FOR_S = 120.0
CLAIM_SLICES = 3  # a claim asks for a third of the concurrency (measured with bench/)
PIPELINE = 2  # passes in flight at once
T = TypeVar("T")


@dataclass(slots=True)
class _Running:
    queue: str
    job: Claimed
    ctx: JobContext
    task: asyncio.Task[None]
    cancel_requested: bool = False


class Worker:
    """Runs the jobs of ``app`` from ``queues``: ``await Worker(app).run()``.

    ``concurrency`` bounds jobs in flight in this process; ``weights`` switches from strict
    queue order to weighted order; ``grace`` is how long shutdown waits for running jobs
    before handing them back to waiting."""

    def __init__(
        self,
        app: App,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = 10,
        weights: Mapping[str, int] | None = None,
        lease: timedelta | None = None,
        grace: timedelta = timedelta(seconds=30),
        process_slots: int | None = None,
        name: str | None = None,
        burst: bool = False,
        unknown_job_grace: timedelta = timedelta(minutes=10),
    ) -> None:
        names = list(queues or app.queues() or ["default"])
        for q in names:
            check_queue_name(q)
        if concurrency < 1:
            raise ConfigError(f"concurrency must be at least 1, got {concurrency}")
        self.app = app
        self.queues = names
        self.order = QueueOrder(names, weights)
        self.concurrency = concurrency
        self.lease = lease or app.settings.lease
        self.lease_ms = int(self.lease.total_seconds() * 1000)
        self.grace = grace
        self.burst = burst
        self.unknown_job_grace_ms = int(unknown_job_grace.total_seconds() * 1000)
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{new_job_id()[-6:]}"
        self.stats = WorkerStats()
        self._runners = Runners(concurrency * 2, process_slots or os.cpu_count() or 2)
        self._running: dict[str, _Running] = {}
        self._done: dict[str, list[tuple[str, str, str]]] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._claim_slice = max(4, concurrency // CLAIM_SLICES)
        self._reserved = 0
        self._force = asyncio.Event()
        self._markers: dict[str, asyncio.Task[bool]] = {}
        # per queue, when (loop time) the next delayed job or held group is due
        self._next_due: dict[str, float | None] = {}
        self._engine: Engine | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._unknown_names: dict[str, str] = {}  # job names warned about once

    # -- control -----------------------------------------------------------------------------

    def stop(self, *, force: bool = False) -> None:
        """Stop claiming; running jobs get ``grace`` to finish (``force``: no grace; they are
        handed back to waiting at once). Safe to call from a signal handler."""
        self._stopping = True
        if force:
            self._force.set()
        self._wake.set()

    @property
    def running(self) -> int:
        return len(self._running)

    async def run(self) -> WorkerStats:
        self._engine = engine = await self.app.engine()
        await engine.ping()
        policy = await engine.eviction_policy()
        if policy not in (None, "noeviction"):
            log.warning(
                "Redis at %s has maxmemory-policy %s: when its memory is full it deletes keys, "
                "jobs among them, without a word; set maxmemory-policy noeviction",
                engine.where,
                policy,
            )
        defined = set(self.app.queues())
        for q in self.queues:
            if q not in defined:
                log.warning(
                    "queue %r: this App defines no job for it; its jobs will wait for a worker "
                    "whose App does (a typo in --queue?)",
                    q,
                )
        log.info("worker %s serving %s (concurrency %d)", self.id, self.queues, self.concurrency)
        self._runners.start(f for f in self.app.registry.values() if f.queue in self.queues)
        helpers = [
            asyncio.create_task(self._heartbeat_loop(engine), name="corral-heartbeat"),
            asyncio.create_task(self._reap_loop(engine), name="corral-reaper"),
            asyncio.create_task(self._cancel_loop(engine), name="corral-cancel"),
        ]
        try:
            await self._fetch_loop(engine)
        finally:
            await self._shutdown(engine)
            await cancel_and_wait([*helpers, *self._markers.values()])
            self._markers.clear()
            self._runners.close()
        return self.stats

    # -- the fetch loop ----------------------------------------------------------------------

    def _free(self) -> int:
        """Slots neither running a job nor promised to a claim in flight."""
        return self.concurrency - len(self._running) - self._reserved

    async def _fetch_loop(self, engine: Engine) -> None:
        # Up to PIPELINE passes are in flight: Redis works on the next one while this process
        # handles the reply of the last (starts its jobs, runs handlers), so neither side
        # waits for the other while there is work.
        passes: set[asyncio.Task[bool]] = set()
        drained = False  # the last pass found nothing: ask again only once woken
        try:
            while True:
                while len(passes) < PIPELINE and not self._stopping:
                    if not ((self._free() > 0 and not drained) or (self._done and not passes)):
                        break
                    passes.add(asyncio.create_task(self._pass(engine)))
                    await asyncio.sleep(0)  # it reserves its slots before another is made
                if not passes:
                    if self._stopping:
                        return
                    if self.burst and not self._running and await self._all_empty(engine):
                        return
                    await self._idle(engine)
                    drained = False
                    continue
                finished, passes = await asyncio.wait(passes, return_when="FIRST_COMPLETED")
                errors = [e for e in (t.exception() for t in finished) if e is not None]
                failure = next((e for e in errors if not isinstance(e, CorralError)), None)
                if failure is not None:
                    raise failure
                if errors:  # ConnectionLost after the transport's retries
                    log.warning("worker %s: %s; retrying in 1s", self.id, errors[0])
                    await asyncio.sleep(1.0)
                else:
                    drained = not any(t.result() for t in finished)
        finally:
            if passes:  # only on an error: let the other pass land, its jobs are ours to run
                await asyncio.wait(passes)
                for task in passes:
                    if not task.cancelled():
                        task.exception()  # retrieved: the first error is the one raised

    async def _pass(self, engine: Engine) -> bool:
        """Acknowledge what finished and claim for free slots, shared among the queues by the
        queue order; slots a queue leaves unclaimed go to the others in the same pass."""
        # Claim in slices: while Redis works on this pass, the jobs of the previous one run,
        # so the worker and the server overlap instead of taking turns.
        budget = 0 if self._stopping else max(0, min(self._free(), self._claim_slice))
        self._reserved += budget
        try:
            plan = self.order.plan(budget)
            claims = {
                q: plan.get(q, 0) for q in self.order.queues if plan.get(q) or q in self._done
            }
            claimed_any = False
            empty: set[str] = set()
            while claims:
                got = await self._exchange_all(engine, claims)
                left = 0
                for queue, wanted in claims.items():
                    self._reserved -= got[queue]
                    budget -= got[queue]
                    if got[queue] < wanted:
                        empty.add(queue)
                        left += wanted - got[queue]
                    self.order.settle(queue, wanted, got[queue])
                    claimed_any = claimed_any or got[queue] > 0
                claims = dict(self.order.plan(left, empty)) if left and not self._stopping else {}
            return claimed_any
        finally:
            self._reserved -= budget

    async def _exchange_all(self, engine: Engine, claims: dict[str, int]) -> dict[str, int]:
        """One acknowledge-and-claim per queue, all in flight together; how many each got.
        Jobs claimed by calls that succeeded are started even if another call failed."""
        if len(claims) == 1:  # the common case, without a task per call
            ((queue, want),) = claims.items()
            return {queue: await self._exchange(engine, queue, want)}
        queues = list(claims)
        results = await asyncio.gather(
            *(self._exchange(engine, q, claims[q]) for q in queues), return_exceptions=True
        )
        got: dict[str, int] = {}
        error: BaseException | None = None
        for queue, result in zip(queues, results, strict=True):
            if isinstance(result, BaseException):
                error = error or result
            else:
                got[queue] = result
        if error is not None:
            raise error
        return got

    async def _exchange(self, engine: Engine, queue: str, want: int) -> int:
        done = self._done.pop(queue, [])
        try:
            flags, claim = await engine.complete_and_claim(
                queue, done, want, self.id, self.lease_ms
            )
        except BaseException:
            self._done.setdefault(queue, [])[:0] = done  # keep them for the next pass
            raise
        completed = sum(flags)
        self.stats.completed += completed
        if completed < len(flags):
            for (job_id, _, _), ok in zip(done, flags, strict=True):
                if not ok:
                    self.stats.stale += 1
                    log.warning("job %s: late result discarded (lease was lost)", job_id)
        if claim is None:
            return 0
        due = claim.next_due_ms  # from the moment Redis ran the claim: about now
        loop_time = asyncio.get_running_loop().time()
        self._next_due[queue] = None if due is None else loop_time + due / 1000.0
        for job in claim.jobs:
            self._start(engine, queue, job)
        return len(claim.jobs)

    async def _idle(self, engine: Engine) -> None:
        """Block until a job finishes, a marker arrives, or a delayed job is due."""
        self._wake.clear()
        if self._done or self._stopping:
            return
        free = self.concurrency - len(self._running)
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._wake.wait())]
        if free > 0:
            for q in self.queues:
                if q not in self._markers:
                    self._markers[q] = asyncio.create_task(engine.wait_marker(q, IDLE_WAIT_S))
            waiters.extend(self._markers.values())
        # A due delayed job matters only with a free slot to claim it into; when full, the next
        # finishing job wakes us (and a due time already past would make every wait zero).
        now = asyncio.get_running_loop().time()
        dues = [d - now for d in self._next_due.values() if d is not None] if free > 0 else []
        timeout = max(0.0, min([IDLE_WAIT_S, *dues]))
        try:
            await asyncio.wait(waiters, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiters[0].cancel()
        for q, task in list(self._markers.items()):
            if task.done():
                del self._markers[q]
                if task.cancelled() or task.exception() is not None:
                    continue
                if task.result() and self.concurrency - len(self._running) <= 0:
                    await engine.signal(q)  # we are full: let another worker have it

    async def _all_empty(self, engine: Engine) -> bool:
        """Burst mode is done when nothing waits or is scheduled; jobs that other workers are
        running are theirs to finish (waiting for them would keep every burst worker alive
        until the slowest one ends)."""
        for q in self.queues:
            c = await engine.counts(q)
            if c["waiting"] or c["delayed"]:
                return False
        return True

    # -- running one job -----------------------------------------------------------------------

    def _start(self, engine: Engine, queue: str, job: Claimed) -> None:
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
        self._running[job.id] = _Running(queue, job, ctx, task)
        self.stats.started += 1
        self.stats.by_job[job.name] += 1

    async def _execute(
        self, engine: Engine, queue: str, job: Claimed, ctx: JobContext, updates: Updates
    ) -> None:
        try:
            await self._attempt(engine, queue, job, ctx, updates)
        except asyncio.CancelledError:
            run = self._running.get(job.id)
            if run is not None and run.cancel_requested:
                await self._record_cancel(engine, queue, job)
            # otherwise shutdown or a lost lease: the job is released or re-leased elsewhere
        except Exception:
            log.exception("job %s: could not record its outcome; its lease will expire", job.id)
        finally:
            self._running.pop(job.id, None)
            self._wake.set()

    async def _attempt(
        self, engine: Engine, queue: str, job: Claimed, ctx: JobContext, updates: Updates
    ) -> None:
        job_fn = self.app.registry.get(job.name)
        if job_fn is None:
            await self._defer_unknown(engine, queue, job)
            return
        raw = job.options_json
        options = from_json(raw, {}) if raw and raw != "{}" else {}
        if isinstance(options, dict) and options:
            timeout_ms = options.get("t")
            timeout = float(timeout_ms) / 1000.0 if timeout_ms else None
        else:  # no options stored with the job: the definition's apply
            timeout = job_fn.timeout_s
        try:
            try:
                result = await self._runners.run(job_fn, job.payload, ctx, timeout)
            finally:
                if updates.pending:  # progress/logs land before the outcome is recorded
                    await updates.flush()
        except ValidationError as exc:
            msg = f"payload no longer valid for {job.name!r}: {describe(exc)}"
            await self._dead(engine, queue, job, "InvalidPayload", msg, DeadReason.INVALID_PAYLOAD)
            return
        except Retry as exc:
            await self._reschedule(engine, queue, job, exc)
            return
        except asyncio.CancelledError:
            raise
        except BaseException as exc:  # SystemExit or KeyboardInterrupt from a handler too:
            # one job's sys.exit() must not take the worker and its other jobs down with it
            await self._failed(engine, queue, job, exc, job_fn)
            return
        if ctx.cancelled:
            return
        self._done.setdefault(queue, []).append((job.id, job.token, result))

    async def _persist(self, write: Callable[[], Awaitable[T]]) -> T:
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

    async def _failed(
        self,
        engine: Engine,
        queue: str,
        job: Claimed,
        exc: BaseException,
        job_fn: JobFunction[Any, Any],
    ) -> None:
        self.stats.failed_attempts += 1
        if isinstance(exc, RemoteError):
            err = error_json(
                type_name=exc.type_name,
                message=str(exc),
                tb=exc.remote_traceback,
                attempt=job.attempt,
                worker=self.id,
                mro=exc.type_names,
            )
        else:
            err = exception_json(exc, job.attempt, self.id)
        options = from_json(job.options_json, {})
        decision = decide(
            exc,
            job.attempt,
            job.max_attempts,
            options if isinstance(options, dict) else {},
            job_fn.options.retry.backoff,
        )
        ok = await self._persist(
            lambda: engine.fail(
                queue,
                job.id,
                job.token,
                err,
                retry_delay_ms=decision.retry_ms,
                reason=decision.reason,
            )
        )
        if not ok:
            self.stats.stale += 1
            log.warning("job %s: failure not recorded, the lease was lost", job.id)
        elif decision.retry_ms is None:
            self.stats.dead += 1
            self.stats.dead_reasons[decision.reason] += 1
            log.info("job %s (%s) is dead: %s", job.id, job.name, decision.reason)
        else:
            self.stats.retried += 1

    async def _reschedule(self, engine: Engine, queue: str, job: Claimed, exc: Retry) -> None:
        delay_ms = int(exc.delay.total_seconds() * 1000)
        hold_ms = delay_ms if isinstance(exc, RateLimited) else 0
        code = await self._persist(
            lambda: engine.reschedule(
                queue, job.id, job.token, 0 if hold_ms else delay_ms, str(exc), hold_ms
            )
        )
        if code == 1:
            self.stats.rescheduled += 1
        elif code == 2:
            self.stats.dead += 1
            self.stats.dead_reasons[DeadReason.RESCHEDULED_TOO_OFTEN] += 1
        else:
            self.stats.stale += 1
            log.warning("job %s: retry not recorded, the lease was lost", job.id)

    async def _defer_unknown(self, engine: Engine, queue: str, job: Claimed) -> None:
        """A job this worker's App does not define: hand it back for a worker that does (new
        producers deploy before new workers); dead ``unknown_job`` once the grace is over."""
        grace_s = self.unknown_job_grace_ms / 1000
        msg = f"no worker registered a job named {job.name!r} within {grace_s:g}s"
        err = error_json(type_name="UnknownJob", message=msg, tb="", attempt=0, worker=self.id)
        code = await self._persist(
            lambda: engine.defer(queue, job.id, job.token, 1000, self.unknown_job_grace_ms, err)
        )
        if code == 1:
            self.stats.deferred += 1
            if self._unknown_names.get(job.name) is None:
                self._unknown_names[job.name] = job.id
                log.warning(
                    "job %s: no job named %r in this App; handed back for a worker that has it "
                    "(dead after %gs)",
                    job.id,
                    job.name,
                    grace_s,
                )
        elif code == 2:
            self.stats.dead += 1
            self.stats.dead_reasons[DeadReason.UNKNOWN_JOB] += 1
            log.warning("job %s is dead (%s): %s", job.id, DeadReason.UNKNOWN_JOB, msg)

    async def _dead(
        self, engine: Engine, queue: str, job: Claimed, type_name: str, message: str, reason: str
    ) -> None:
        """A job that cannot run at all: straight to the dead set with a readable reason."""
        err = error_json(
            type_name=type_name, message=message, tb="", attempt=job.attempt, worker=self.id
        )
        dead = await self._persist(
            lambda: engine.fail(queue, job.id, job.token, err, retry_delay_ms=None, reason=reason)
        )
        if dead:
            self.stats.dead += 1
            self.stats.dead_reasons[reason] += 1
            log.warning("job %s is dead (%s): %s", job.id, reason, message)

    # -- cancellation ----------------------------------------------------------------------

    def _cancel(self, job_id: str) -> None:
        """Stop a running handler whose job was cancelled from elsewhere: the asyncio task is
        cancelled, a thread-mode handler sees ``current_job().cancelled`` (its result is
        discarded), a process-mode child is killed."""
        run = self._running.get(job_id)
        if run is None or run.cancel_requested:
            return
        log.info("job %s: cancelled by request", job_id)
        run.cancel_requested = True
        run.ctx.cancelled = True
        run.task.cancel()

    async def _record_cancel(self, engine: Engine, queue: str, job: Claimed) -> None:
        asked = from_json(await self._persist(lambda: engine.job_field(queue, job.id, "cx")), {})
        who = asked.get("by", "?") if isinstance(asked, dict) else "?"
        why = asked.get("reason", "") if isinstance(asked, dict) else ""
        err = error_json(
            type_name="Cancelled",
            message=f"cancelled while running by {who}" + (f": {why}" if why else ""),
            tb="",
            attempt=job.attempt,
            worker=self.id,
        )
        reason = DeadReason.CANCELLED
        if await self._persist(
            lambda: engine.fail(queue, job.id, job.token, err, retry_delay_ms=None, reason=reason)
        ):
            self.stats.cancelled += 1

    async def _cancel_loop(self, engine: Engine) -> None:
        ops = Ops(engine)
        while True:
            try:
                async for _queue, job_id in ops.cancel_signals(self.queues):
                    self._cancel(job_id)
            except CorralError as exc:
                log.warning("cancel channel: %s; resubscribing", exc)
                await asyncio.sleep(1.0)

    # -- leases ------------------------------------------------------------------------------

    async def _heartbeat_loop(self, engine: Engine) -> None:
        interval = max(self.lease.total_seconds() / 3.0, 0.05)
        while True:
            await asyncio.sleep(interval)
            by_queue: dict[str, list[tuple[str, str]]] = {}
            for run in list(self._running.values()):
                by_queue.setdefault(run.queue, []).append((run.job.id, run.job.token))
            for queue, items in by_queue.items():
                try:
                    lost, cancel = await engine.heartbeat(queue, self.lease_ms, items)
                except CorralError as exc:
                    log.warning("heartbeat failed: %s", exc)
                    continue
                for job_id in cancel:  # a missed pub/sub message is caught up here
                    self._cancel(job_id)
                sent = dict(items)
                for job_id in lost:
                    lost_run = self._running.get(job_id)
                    # the same token: a job retried and claimed again while this heartbeat
                    # was in flight is a new attempt, whose lease is not lost
                    if lost_run is not None and lost_run.job.token == sent.get(job_id):
                        log.warning("job %s: lease lost; cancelling this attempt", job_id)
                        lost_run.ctx.cancelled = True
                        lost_run.task.cancel()

    async def _reap_loop(self, engine: Engine) -> None:
        interval = min(self.app.settings.reap_interval.total_seconds(), self.lease.total_seconds())
        while True:
            for queue in self.queues:
                try:
                    requeued, dead = await engine.reap(queue)
                except CorralError as exc:
                    log.warning("reaper failed: %s", exc)
                    continue
                if requeued or dead:
                    log.warning(
                        "queue %s: recovered %d stalled job(s), %d dead", queue, requeued, dead
                    )
                    self._wake.set()
            await asyncio.sleep(interval)

    # -- shutdown ------------------------------------------------------------------------------

    async def _shutdown(self, engine: Engine) -> None:
        """Let running jobs finish within the grace period, then hand the rest back."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace.total_seconds()
        forced = asyncio.ensure_future(self._force.wait())
        while self._running and loop.time() < deadline and not self._force.is_set():
            tasks: list[asyncio.Future[Any]] = [r.task for r in self._running.values()]
            await asyncio.wait(
                [*tasks, forced], timeout=deadline - loop.time(), return_when="FIRST_COMPLETED"
            )
            await self._flush(engine)
        forced.cancel()
        leftovers = list(self._running.values())
        for run in leftovers:
            run.ctx.cancelled = True
        if leftovers:
            await cancel_and_wait([r.task for r in leftovers])
            by_queue: dict[str, list[tuple[str, str]]] = {}
            for run in leftovers:
                by_queue.setdefault(run.queue, []).append((run.job.id, run.job.token))
            for queue, items in by_queue.items():
                try:
                    self.stats.released += await engine.release(queue, items)
                except CorralError as exc:
                    log.error("could not hand back %d job(s) on %s: %s", len(items), queue, exc)
        await self._flush(engine)

    async def _flush(self, engine: Engine) -> None:
        while self._done:
            queue, done = self._done.popitem()
            try:
                flags = await engine.complete(queue, done)
            except CorralError as exc:
                log.error("could not acknowledge %d job(s) on %s: %s", len(done), queue, exc)
                return
            self.stats.completed += sum(flags)
            self.stats.stale += len(flags) - sum(flags)
