"""Runs one handler call in its mode (event loop, thread, or child process) with a timeout."""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterable
from typing import Any

from corral.context import JobContext, reset_current, set_current
from corral.definition import JobDefinition
from corral.worker.decisions import timeout_error
from corral.worker.process import ProcessPool
from corral.worker.threads import DaemonThreads

log = logging.getLogger(__name__)


class Runners:
    """Owns the handler threads and the process pool of one worker."""

    def __init__(self, threads: int, processes: int) -> None:
        self._threads = DaemonThreads(threads, "corral-job")
        self._processes_size = processes
        self._processes: ProcessPool | None = None

    def start(self, definitions: Iterable[JobDefinition]) -> None:
        """Warm the process pool in the background if any of ``definitions`` runs in process
        mode, so its children have imported the handlers before they take a job."""
        targets = [
            (d.fn.__module__, d.fn.__qualname__, d.name) for d in definitions if d.mode == "process"
        ]
        if targets:
            self._pool(targets).start()

    def _pool(self, targets: list[tuple[str, str, str]] | None = None) -> ProcessPool:
        if self._processes is None:
            self._processes = ProcessPool(self._processes_size, targets or ())
        return self._processes

    async def run(
        self,
        job: JobDefinition,
        payload: str,
        ctx: JobContext,
        timeout: float | None,
    ) -> str:
        """Run the handler; returns the result as JSON. Raises what the handler raised,
        ``JobTimeout`` past ``timeout``, or StalePayload if the payload no longer fits."""
        if job.mode == "process":
            # Validate here too, so a stale payload is StalePayload (dead, invalid_payload)
            # rather than an ordinary error from the child that would be retried.
            job.codec.loads(payload)
            fn = job.fn
            return await self._pool().run(fn.__module__, fn.__qualname__, payload, ctx, timeout)
        kwargs = job.codec.loads(payload)
        if job.mode == "async":
            token = set_current(ctx)
            try:
                if timeout is None:
                    result = await job.fn(**kwargs)
                else:
                    result = await self._with_timeout(job, kwargs, timeout)
            finally:
                reset_current(token)
        else:
            result = await self._in_thread(job, kwargs, ctx, timeout)
        return job.codec.dump_result(result)

    async def _with_timeout(
        self, job: JobDefinition, kwargs: dict[str, Any], timeout: float
    ) -> Any:
        scope = asyncio.timeout(timeout)
        try:
            async with scope:
                return await job.fn(**kwargs)
        except TimeoutError:
            if scope.expired():  # ours; a TimeoutError the handler raised stays its own
                raise timeout_error(timeout) from None
            raise

    async def _in_thread(
        self,
        job: JobDefinition,
        kwargs: dict[str, Any],
        ctx: JobContext,
        timeout: float | None,
    ) -> Any:
        context = contextvars.copy_context()
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()

        def call() -> Any:
            loop.call_soon_threadsafe(_set_once, started)
            set_current(ctx)
            return job.fn(**kwargs)

        future = self._threads.run(lambda: context.run(call), f"job {ctx.id} ({ctx.name})")
        try:
            # The timeout runs from the moment a thread takes the job: threads of timed-out
            # handlers cannot be stopped, and while they hold the pool a new job must not use
            # up its time waiting for one.
            waited = 0.0
            while not started.done() and not future.done():
                await asyncio.wait([started, future], timeout=5.0, return_when="FIRST_COMPLETED")
                waited += 5.0
                if not started.done() and not future.done():
                    log.warning(
                        "job %s has waited %.0fs for a free thread: handlers that timed out "
                        "are still running in every thread of the pool",
                        ctx.id,
                        waited,
                    )
            # shield: on timeout the thread cannot be stopped; it finishes on its own and the
            # fence (its token is no longer current) discards whatever it produces.
            scope = asyncio.timeout(timeout)
            try:
                async with scope:
                    return await asyncio.shield(future)
            except TimeoutError:
                if not scope.expired():  # the handler's own TimeoutError
                    raise
                _abandon(ctx)
                raise timeout_error(timeout or 0) from None
        except asyncio.CancelledError:
            _abandon(ctx)
            future.cancel()  # not started yet: it never will be; running: its outcome is dropped
            raise

    def drain(self) -> None:
        """The worker is stopping: no new process-mode children."""
        if self._processes is not None:
            self._processes.drain()

    def close(self) -> None:
        """Stop the pools. Handler threads still running (they timed out, were cancelled or
        outlived the grace period) are abandoned: they end with the process, which they no
        longer keep alive."""
        stuck = self._threads.busy()
        if stuck:
            log.warning(
                "abandoning %d handler thread(s) that did not return: %s",
                len(stuck),
                ", ".join(sorted(stuck)),
            )
        self._threads.close()
        if self._processes is not None:
            self._processes.close()


def _abandon(ctx: JobContext) -> None:
    """The attempt is over while its thread runs on: the handler sees ``cancelled``, and its
    progress and log writes are dropped here (the fence would refuse them: the job has moved
    on) rather than scheduled on an event loop that may be closing."""
    ctx.cancelled = True
    ctx.writer = _drop


def _drop(progress: Any, line: str) -> None:
    pass


def _set_once(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
