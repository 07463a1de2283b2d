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
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from corral.app import App
from corral.engine.keys import check_queue_name
from corral.engine.ports import WorkerEngine
from corral.errors import ConfigError, CorralError
from corral.ids import new_job_id
from corral.worker.attempts import Attempts
from corral.worker.hook_runner import HookRunner
from corral.worker.idle import IdleWait
from corral.worker.leases import Leases, heartbeat_interval
from corral.worker.limits import NameLimits
from corral.worker.order import QueueOrder
from corral.worker.outcomes import Recorder
from corral.worker.presence import Presence
from corral.worker.runners import Runners
from corral.worker.running import Running
from corral.worker.startup import check_eviction, warn_unserved
from corral.worker.stats import WorkerStats
from corral.worker.updates import cancel_and_wait

log = logging.getLogger(__name__)

CLAIM_SLICES = 3  # a claim asks for a third of the concurrency (measured with bench/)
PIPELINE = 2  # passes in flight at once


class Worker:
    """Runs the jobs of ``app`` from ``queues``: ``await Worker(app).run()``.

    ``concurrency`` bounds jobs in flight in this process; ``limits`` bounds some job names
    further (``{"send_email": 5}``, over ``@app.job(concurrency=...)``: see ``limits.py``);
    ``weights`` switches from strict queue order to weighted order; ``grace`` is how long
    shutdown waits for running jobs before handing them back to waiting; ``burst`` returns
    once nothing is claimable now (docs/workers.md)."""

    def __init__(
        self,
        app: App,
        queues: Sequence[str] | None = None,
        *,
        concurrency: int = 10,
        limits: Mapping[str, int] | None = None,
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
        self.id = name or f"{socket.gethostname()}:{os.getpid()}:{new_job_id()[-6:]}"
        self.stats = WorkerStats()
        # Set once the worker has connected, registered and finished a first claim: from then
        # on it is claiming (``corral worker --ready-file`` waits for it).
        self.ready = asyncio.Event()
        self._runners = Runners(concurrency * 2, process_slots or os.cpu_count() or 2)
        self._running: dict[str, Running] = {}
        self._wake = asyncio.Event()
        self._stopping = False
        self._claim_slice = max(4, concurrency // CLAIM_SLICES)
        self._reserved = 0
        self._force = asyncio.Event()
        self._idle = IdleWait(names)
        grace_ms = int(unknown_job_grace.total_seconds() * 1000)
        self._recorder = Recorder(self.id, self.stats, self._force, grace_ms)
        self.limits = NameLimits((f.definition for f in app.registry.values()), limits)
        self._attempts = Attempts(
            app.registry,
            self._runners,
            self._recorder,
            self._running,
            self.stats,
            self._wake,
            self.limits,
        )
        self._presence = Presence(
            self.id, names, concurrency, heartbeat_interval(self.lease), self._running
        )
        self._leases = Leases(
            names,
            self._running,
            self.lease,
            app.settings.reap_interval,
            self._wake.set,
            self._presence,
            self.id,
        )

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
        engine = await self.app.engine()
        await engine.ping()
        await check_eviction(engine)
        warn_unserved(self.queues, self.app.queues())
        served = (f.definition for f in self.app.registry.values() if f.queue in self.queues)
        hooks = HookRunner(self.app.hooks, self.stats)
        await hooks.startup()  # before the first claim: the handlers may need what it opens
        if self.app.hooks.for_jobs:
            self._attempts.observe = self._recorder.observe = self._leases.observe = hooks
        await self._presence.register(engine)
        self._runners.start(served)
        helpers = self._leases.start(engine)
        try:
            await self._fetch_loop(engine)
        finally:
            self._runners.drain()
            await self._shutdown(engine)
            await cancel_and_wait(helpers)  # no heartbeat writes the entry again after this
            await self._presence.leave(engine)
            await self._idle.close()
            await hooks.shutdown()
            self._runners.close()
        return self.stats

    # -- the fetch loop ----------------------------------------------------------------------

    def _free(self) -> int:
        """Slots neither running a job nor promised to a claim in flight."""
        return self.concurrency - len(self._running) - self._reserved

    async def _fetch_loop(self, engine: WorkerEngine) -> None:
        # Up to PIPELINE passes are in flight: Redis works on the next one while this process
        # handles the reply of the last (starts its jobs, runs handlers), so neither side
        # waits for the other while there is work.
        passes: set[asyncio.Task[bool]] = set()
        drained = False  # the last pass found nothing: ask again only once woken
        try:
            while True:
                while len(passes) < PIPELINE and not self._stopping:
                    done = self._recorder.pending and not passes
                    if not ((self._free() > 0 and not drained) or done):
                        break
                    passes.add(asyncio.create_task(self._pass(engine)))
                    await asyncio.sleep(0)  # it reserves its slots before another is made
                if not passes:
                    if self._stopping:
                        return
                    if self.burst and not self._running:
                        if await self._burst_done(engine):
                            return
                        continue
                    await self._wait_for_work(engine)
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
                    if not self.ready.is_set():
                        self._became_ready()
        finally:
            if passes:  # only on an error: let the other pass land, its jobs are ours to run
                await asyncio.wait(passes)
                for task in passes:
                    if not task.cancelled():
                        task.exception()  # retrieved: the first error is the one raised

    def _became_ready(self) -> None:
        """The documented readiness line (docs/operations.md): scripts wait for it."""
        self.ready.set()
        log.info(
            "worker %s ready: serving %s (concurrency %d)",
            self.id,
            ", ".join(self.queues),
            self.concurrency,
        )

    async def _pass(self, engine: WorkerEngine) -> bool:
        """Acknowledge what finished and claim for free slots, shared among the queues by the
        queue order; slots a queue leaves unclaimed go to the others in the same pass."""
        # Claim in slices: while Redis works on this pass, the jobs of the previous one run,
        # so the worker and the server overlap instead of taking turns.
        budget = 0 if self._stopping else max(0, min(self._free(), self._claim_slice))
        self._reserved += budget
        try:
            plan = self.order.plan(budget)
            claims = {
                q: plan.get(q, 0) for q in self.order.queues if plan.get(q) or self._recorder.has(q)
            }
            claimed_any = False
            empty: set[str] = set()
            while claims:
                got, error = await self._exchange_all(engine, claims)
                left = 0
                for queue, wanted in claims.items():
                    self._reserved -= got[queue]
                    budget -= got[queue]
                    if got[queue] < wanted:
                        empty.add(queue)
                        left += wanted - got[queue]
                    self.order.settle(queue, wanted, got[queue])
                    claimed_any = claimed_any or got[queue] > 0
                if error is not None:  # after settling: the weights owe nothing for it
                    raise error
                claims = dict(self.order.plan(left, empty)) if left and not self._stopping else {}
            return claimed_any
        finally:
            self._reserved -= budget

    async def _exchange_all(
        self, engine: WorkerEngine, claims: dict[str, int]
    ) -> tuple[dict[str, int], BaseException | None]:
        """One acknowledge-and-claim per queue, all in flight together; how many each got
        (0 for a call that failed) and the first failure. Jobs claimed by calls that
        succeeded are started even if another call failed."""
        if len(claims) == 1:  # the common case, without a task per call
            ((queue, want),) = claims.items()
            try:
                return {queue: await self._exchange(engine, queue, want)}, None
            except CorralError as exc:
                return {queue: 0}, exc
        queues = list(claims)
        results = await asyncio.gather(
            *(self._exchange(engine, q, claims[q]) for q in queues), return_exceptions=True
        )
        got: dict[str, int] = {}
        error: BaseException | None = None
        for queue, result in zip(queues, results, strict=True):
            if isinstance(result, BaseException):
                error = error or result
                got[queue] = 0
            else:
                got[queue] = result
        return got, error

    async def _exchange(self, engine: WorkerEngine, queue: str, want: int) -> int:
        done = self._recorder.take(queue)
        try:
            flags, claim = await engine.complete_and_claim(
                queue, done, want, self.id, self.lease_ms
            )
        except BaseException:
            self._recorder.restore(queue, done)  # acknowledged by the next pass
            raise
        if done:
            self._recorder.acknowledged(done, flags)
        if claim is None:
            return 0
        self._idle.due_in(queue, claim.next_due_ms)
        for job in claim.jobs:
            self._attempts.start(engine, queue, job)
        return len(claim.jobs)

    async def _burst_done(self, engine: WorkerEngine) -> bool:
        """Burst mode ends when nothing is claimable now, as the claim script decides: one
        more pass, made with nothing running here (a job that just ended may have gone back
        to waiting), claims nothing. Delayed jobs not yet due, paused queues and groups, and
        groups held by their limits do not keep it alive; jobs other workers are running are
        theirs to finish."""
        try:
            return not await self._pass(engine)
        except CorralError as exc:
            log.warning("worker %s: %s; retrying in 1s", self.id, exc)
            await asyncio.sleep(1.0)
            return False

    async def _wait_for_work(self, engine: WorkerEngine) -> None:
        """Block until a job finishes, a marker arrives, or a delayed job is due."""
        self._wake.clear()
        if self._recorder.pending or self._stopping:
            return
        await self._idle.wait(engine, self._wake, self.concurrency - len(self._running))
        await self._idle.pass_on_markers(engine, self.concurrency - len(self._running) <= 0)

    # -- shutdown ------------------------------------------------------------------------------

    async def _shutdown(self, engine: WorkerEngine) -> None:
        """Hand back the jobs still waiting for a turn under their name's limit (they have not
        begun: nothing is lost), let running jobs finish within the grace period, then hand
        the rest back."""
        queued = [r for r in self._running.values() if r.queued]
        if queued:
            await cancel_and_wait([r.task for r in queued])
            await self._recorder.release(engine, queued)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.grace.total_seconds()
        forced = asyncio.ensure_future(self._force.wait())
        while self._running and loop.time() < deadline and not self._force.is_set():
            tasks: list[asyncio.Future[Any]] = [r.task for r in self._running.values()]
            await asyncio.wait(
                [*tasks, forced], timeout=deadline - loop.time(), return_when="FIRST_COMPLETED"
            )
            await self._recorder.flush(engine)
        forced.cancel()
        leftovers = list(self._running.values())
        for run in leftovers:
            run.ctx.cancelled = True
        if leftovers:
            await cancel_and_wait([r.task for r in leftovers])
            await self._recorder.release(engine, leftovers)
        await self._recorder.flush(engine)
