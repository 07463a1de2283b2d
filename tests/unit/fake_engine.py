"""An in-memory engine that records every call: the worker's and the handles' decisions are
unit-tested against it, without a server (the real engine has its own tier, ``tests/engine``).

It keeps jobs in a dict and hands waiting ones out in FIFO order; it does not model delays,
groups or limits: a job sent back (retry, reschedule, defer, release) is simply not handed out
again. ``calls`` lists ``(method, queue, details)`` in order."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.engine.outcomes import Deferred, Failed, Rescheduled
from corral.engine.wire import Claimed, ClaimResult, NewJob, Reaped
from corral.errors import ConnectionLost
from corral.models import (
    Cancellation,
    ErrorRecord,
    JobInfo,
    JobOverrides,
    JobState,
    QueueCounts,
    WorkerInfo,
)


@dataclass
class FakeJob:
    id: str
    queue: str
    name: str
    payload: str
    max_attempts: int = 3
    overrides: JobOverrides | None = None
    state: JobState = JobState.WAITING
    attempt: int = 0
    token: str = ""
    result: str | None = None
    errors: list[ErrorRecord] = field(default_factory=list)
    dead_reason: str | None = None
    cancellation: Cancellation | None = None


class FakeEngine:
    where = "fake://"

    def __init__(self) -> None:
        self.jobs: dict[str, FakeJob] = {}
        self.calls: list[tuple[str, str, Any]] = []
        self._tokens = itertools.count(1)
        self.changed = asyncio.Event()
        self.outages = 0  # the next this many complete() calls find Redis unreachable
        self.workers: dict[str, WorkerInfo] = {}  # the registry of live workers

    # -- setting up --------------------------------------------------------------------------

    def add(self, queue: str, name: str, payload: str, **kw: Any) -> FakeJob:
        job = FakeJob(f"j{len(self.jobs) + 1}", queue, name, payload, **kw)
        self.jobs[job.id] = job
        return job

    def called(self, method: str) -> list[Any]:
        return [details for m, _, details in self.calls if m == method]

    def _owned(self, job_id: str, token: str) -> FakeJob | None:
        job = self.jobs.get(job_id)
        ok = job is not None and job.state == JobState.ACTIVE and job.token == token
        return job if ok else None

    def _moved(self, job: FakeJob, state: JobState) -> None:
        job.state = state
        job.token = ""
        self.changed.set()

    # -- producer ----------------------------------------------------------------------------

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool]:
        flags = []
        for new in jobs:
            flags.append(new.id not in self.jobs)
            if flags[-1]:
                spec = new.spec
                self.jobs[new.id] = FakeJob(
                    new.id, queue, new.name, new.payload, spec.max_attempts, spec.overrides
                )
        self.calls.append(("enqueue", queue, [n.id for n in jobs]))
        return flags

    # -- worker --------------------------------------------------------------------------------

    async def ping(self) -> None:
        return None

    async def eviction_policy(self) -> str | None:
        return "noeviction"

    async def counts(self, queue: str) -> QueueCounts:
        states = [j.state for j in self.jobs.values() if j.queue == queue]
        return QueueCounts(
            queue,
            states.count(JobState.WAITING),
            0,  # jobs sent back are not handed out again: nothing is "delayed" here
            states.count(JobState.ACTIVE),
            states.count(JobState.COMPLETED),
            states.count(JobState.DEAD),
            False,
            0,
            0,
        )

    async def complete_and_claim(
        self, queue: str, done: Sequence[tuple[str, str, str]], n: int, worker: str, lease_ms: int
    ) -> tuple[list[bool], ClaimResult | None]:
        flags = await self.complete(queue, done) if done else []
        if n <= 0:
            return flags, None
        self.calls.append(("claim", queue, n))
        token = str(next(self._tokens))
        claimed = []
        for job in self.jobs.values():
            if len(claimed) == n:
                break
            if job.queue == queue and job.state == JobState.WAITING:
                job.state, job.token = JobState.ACTIVE, token
                job.attempt += 1
                claimed.append(
                    Claimed(job.id, job.name, job.payload, job.attempt, job.max_attempts,
                            job.overrides, token, "")
                )  # fmt: skip
        return flags, ClaimResult(claimed, None, False)

    async def complete(self, queue: str, done: Sequence[tuple[str, str, str]]) -> list[bool]:
        if self.outages:
            self.outages -= 1
            self.calls.append(("complete_unreachable", queue, list(done)))
            raise ConnectionLost("fake:// is unreachable")
        flags = []
        for job_id, token, result in done:
            job = self._owned(job_id, token)
            flags.append(job is not None)
            if job is not None:
                job.result = result
                self._moved(job, JobState.COMPLETED)
        self.calls.append(("complete", queue, list(done)))
        return flags

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
        self.calls.append(("fail", queue, (job_id, error, retry_delay_ms, reason)))
        job = self._owned(job_id, token)
        if job is None:
            return Failed.REFUSED
        job.errors.append(error)
        if retry_delay_ms is None:
            job.dead_reason = reason
            self._moved(job, JobState.CANCELLED if reason == "cancelled" else JobState.DEAD)
        else:
            self._moved(job, JobState.DELAYED)
        return Failed.RECORDED

    async def reschedule(
        self, queue: str, job_id: str, token: str, delay_ms: int, message: str, hold_ms: int = 0
    ) -> Rescheduled:
        self.calls.append(("reschedule", queue, (job_id, delay_ms, message, hold_ms)))
        job = self._owned(job_id, token)
        if job is None:
            return Rescheduled.REFUSED
        self._moved(job, JobState.DELAYED)
        return Rescheduled.RESCHEDULED

    async def defer(
        self, queue: str, job_id: str, token: str, delay_ms: int, grace_ms: int, error: ErrorRecord
    ) -> Deferred:
        self.calls.append(("defer", queue, (job_id, delay_ms, grace_ms, error)))
        job = self._owned(job_id, token)
        if job is None:
            return Deferred.REFUSED
        self._moved(job, JobState.DELAYED)
        return Deferred.DEFERRED

    async def release(self, queue: str, items: Sequence[tuple[str, str]]) -> int:
        self.calls.append(("release", queue, list(items)))
        n = 0
        for job_id, token in items:
            job = self._owned(job_id, token)
            if job is not None:
                job.attempt -= 1
                self._moved(job, JobState.DELAYED)  # back, but not handed out again here
                n += 1
        return n

    async def heartbeat(
        self, queue: str, lease_ms: int, items: Sequence[tuple[str, str]]
    ) -> tuple[list[str], list[str]]:
        return [], [j for j, _ in items if self.jobs[j].cancellation is not None]

    async def reap(self, queue: str, limit: int = 500, reaper: str = "") -> Reaped:
        return Reaped(0, 0)

    async def touch(self, queue: str, job_id: str, token: str, **kw: Any) -> bool:
        self.calls.append(("touch", queue, (job_id, kw)))
        return self._owned(job_id, token) is not None

    async def register_worker(self, info: WorkerInfo) -> None:
        self.workers[info.id] = info
        self.calls.append(("register_worker", "", info))

    async def unregister_worker(self, worker_id: str) -> None:
        self.workers.pop(worker_id, None)
        self.calls.append(("unregister_worker", "", worker_id))

    async def wait_marker(self, queue: str, timeout_s: float) -> bool:
        await asyncio.sleep(min(timeout_s, 0.02))
        return False

    async def signal(self, queue: str) -> None:
        return None

    async def cancellation(self, queue: str, job_id: str) -> Cancellation | None:
        return self.jobs[job_id].cancellation

    async def cancel_signals(self, queues: Sequence[str]) -> AsyncIterator[tuple[str, str]]:
        await asyncio.Event().wait()  # nothing is ever published here
        yield "", ""

    # -- reader (for handles) ----------------------------------------------------------------

    async def get_job(self, queue: str, job_id: str) -> JobInfo | None:
        job = self.jobs.get(job_id)
        if job is None:
            return None
        return JobInfo(
            job.id, queue, job.name, job.state, None, None, 500, job.attempt, job.max_attempts,
            None, None, None, None, None, list(job.errors), job.dead_reason, None, 0, 0,
        )  # fmt: skip

    async def watch(self, queue: str, job_id: str) -> JobState | None:
        job = self.jobs.get(job_id)
        return None if job is None else job.state

    async def wait_done(self, queue: str, job_id: str, timeout_s: float) -> bool:
        self.changed.clear()
        try:
            await asyncio.wait_for(self.changed.wait(), timeout_s)
        except TimeoutError:
            return False
        return True

    async def result_json(self, queue: str, job_id: str) -> str | None:
        return self.jobs[job_id].result

    async def close(self) -> None:
        return None
