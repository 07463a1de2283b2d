"""Running an App's lifecycle hooks in a worker: after an outcome is recorded (a completed job
once it is acknowledged), each in a task of its own, bounded by the hooks' timeout. A hook
never changes the job's outcome: one that raises or hangs is logged and counted
(``WorkerStats.hook_errors``), and the worker and the job carry on. Plain (sync) hooks run in
daemon threads, so a hung one cannot keep the process alive."""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from corral.hooks import Hooks
from corral.models import JobEvent
from corral.worker.stats import WorkerStats
from corral.worker.threads import DaemonThreads
from corral.worker.updates import cancel_and_wait

log = logging.getLogger(__name__)


class HookRunner:
    def __init__(self, hooks: Hooks, stats: WorkerStats) -> None:
        self.hooks = hooks
        self.stats = stats
        self._timeout = hooks.timeout.total_seconds()
        self._tasks: set[asyncio.Task[None]] = set()
        self._threads = DaemonThreads(4, "corral-hook")

    def __call__(self, event: JobEvent) -> None:
        """The outcome of one attempt: call the hooks it concerns, in the background."""
        for hook in self.hooks.for_event(event):
            task = asyncio.create_task(self._call(hook, event, f"{event.outcome} {event.job_id}"))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def startup(self) -> None:
        """Before the worker claims anything; a startup hook that fails stops the worker (it
        opens what the handlers need: a worker without it would fail every job)."""
        for hook in self.hooks.on_startup:
            await self._bounded(hook, "startup")

    async def shutdown(self) -> None:
        """After the last outcome is recorded: wait for the job hooks still running (within
        the timeout), then the shutdown hooks, each bounded and none able to stop the rest."""
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=self._timeout)
            await cancel_and_wait(list(self._tasks))
        for hook in self.hooks.on_shutdown:
            await self._call(hook, None, "shutdown")
        self._threads.close()

    async def _call(self, hook: Callable[..., Any], event: JobEvent | None, what: str) -> None:
        try:
            await self._bounded(hook, what, event)
        except Exception:
            self.stats.hook_errors += 1
            log.exception("hook %s (%s) failed; the job's outcome stands", _name(hook), what)

    async def _bounded(self, hook: Callable[..., Any], what: str, *args: Any) -> None:
        args = tuple(a for a in args if a is not None)
        in_thread: asyncio.Future[Any] | None = None
        try:
            async with asyncio.timeout(self._timeout):
                if inspect.iscoroutinefunction(hook):
                    await hook(*args)
                else:
                    in_thread = self._threads.run(
                        lambda: hook(*args), f"hook {_name(hook)} ({what})"
                    )
                    result: Awaitable[Any] | None = await in_thread
                    if inspect.isawaitable(result):  # a plain function that returned one
                        await result
        except TimeoutError:
            if in_thread is not None:
                # A hung plain hook keeps its thread; the pool starts another for the next
                # hooks, so a few hangs cannot starve the rest (on_shutdown included).
                self._threads.abandon(in_thread)
            raise TimeoutError(f"took longer than {self._timeout:g}s") from None


def _name(hook: Callable[..., Any]) -> str:
    return getattr(hook, "__qualname__", repr(hook))
