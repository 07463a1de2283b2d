"""Process mode: CPU-bound sync handlers run in child processes we own.

We keep our own small pool instead of ProcessPoolExecutor because a timed-out or cancelled job
must kill exactly its child and replace it, which an executor cannot do.

Children are warmed: each imports the handlers it may be given and reports ready before it
takes a job, and a killed child is replaced in the background. A job's timeout runs from the
moment its child calls the handler; the wait before that (a child still importing) is bounded
by ``startup_limit`` instead, and ends in ``StartupTimeout``, not ``JobTimeout``.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from corral.codec import from_json
from corral.context import JobContext
from corral.errors import Fatal, RateLimited, Retry
from corral.worker._child import child_main
from corral.worker.decisions import timeout_error
from corral.worker.threads import DaemonThreads

log = logging.getLogger(__name__)

STARTUP_LIMIT_S = 120.0
RESTART_BACKOFF_S = (0.0, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
Target = tuple[str, str, str]  # module, qualname, job name


class RemoteError(Exception):
    """An exception raised in a child process, carried back as text."""

    def __init__(
        self, type_name: str, message: str, tb: str, type_names: Sequence[str] = ()
    ) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = tb
        self.type_names = tuple(type_names)  # the remote class chain, for the error record


class ChildDied(RemoteError):
    """The child exited mid-job (crash, ``os._exit``, OOM kill); it is never reused."""


class StartupTimeout(RemoteError):
    """The handler was not called within the start-up limit: no child finished importing the
    job modules in time, or importing this job's module hung."""


class _Child:
    def __init__(self, ctx: multiprocessing.context.SpawnContext, targets: list[Target]) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc: BaseProcess = ctx.Process(
            target=child_main, args=(child, targets), daemon=True, name="corral-process-job"
        )
        self.proc.start()
        child.close()
        self._lock = threading.Lock()
        self._reading = self._killed = False

    def recv(self) -> tuple[Any, ...]:
        """Read one message (in a thread: it blocks until the child writes or dies)."""
        with self._lock:
            self._reading = True
        try:
            msg: tuple[Any, ...] = self.conn.recv()
            return msg
        finally:
            with self._lock:
                self._reading = False
                if self._killed:
                    self.conn.close()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(2)
        with self._lock:
            self._killed = True
            # A read in flight ends with the child (EOF) and closes the pipe then: closed
            # under it, its descriptor could be reused by the next child's pipe meanwhile.
            if not self._reading:
                self.conn.close()


class ProcessPool:
    """``size`` warmed children, started in the background by ``start()`` (or the first job)
    and kept at ``size``: a child that dies or is killed is replaced by a fresh one."""

    def __init__(
        self, size: int, targets: Sequence[Target] = (), startup_limit: float = STARTUP_LIMIT_S
    ) -> None:
        self.size = max(1, size)
        self.startup_limit = startup_limit
        self._targets = list(dict.fromkeys(targets))
        self._mp = multiprocessing.get_context("spawn")
        self._free = asyncio.Semaphore(self.size)
        self._idle: list[_Child] = []  # ready and not running a job
        self._waiters: deque[asyncio.Future[_Child]] = deque()  # jobs waiting for a ready child
        self._children: set[_Child] = set()  # every live child: warming, idle or busy
        self._alive = 0  # children started or being started, not yet discarded
        self._warming: set[asyncio.Task[None]] = set()
        self._failures = 0  # children in a row that did not get ready
        self._reported: set[tuple[str, str]] = set()
        self._threads = DaemonThreads(2 * self.size + 1, "corral-proc")  # spawns and pipe reads
        self._closed = False
        self._draining = False  # the worker is stopping: children that end are not replaced

    def start(self) -> None:
        """Start children in the background until ``size`` are alive."""
        loop = asyncio.get_running_loop()
        while not self._closed and not self._draining and self._alive < self.size:
            self._alive += 1
            task = loop.create_task(self._warm(), name="corral-process-warm-up")
            self._warming.add(task)
            task.add_done_callback(self._warming.discard)

    async def run(
        self, module: str, qualname: str, payload: str, ctx: JobContext, timeout: float | None
    ) -> str:
        """Run the handler in a ready child; ``JobTimeout`` past ``timeout`` from the moment
        the child calls it, ``StartupTimeout`` if that moment does not come within the
        start-up limit. The child is killed on either, and when the job is cancelled."""
        async with self._free:
            loop = asyncio.get_running_loop()
            child: _Child | None = None
            started = healthy = False
            scope = asyncio.timeout(self.startup_limit)
            try:
                async with scope:
                    child = await self._take()
                    _send(child, (module, qualname, payload, _fields(ctx)))
                    while True:
                        msg = await self._recv(child)
                        if msg[0] == "started":
                            started = True
                            scope.reschedule(None if timeout is None else loop.time() + timeout)
                            continue
                        result = _outcome(msg, ctx)
                        if result is not None:
                            healthy = True
                            return result
            except TimeoutError:
                if not scope.expired():
                    raise
                if started:
                    raise timeout_error(timeout or 0) from None
                raise StartupTimeout(
                    "ProcessStartupTimeout",
                    f"{module}.{qualname} was not started within {self.startup_limit:g}s: no "
                    f"process-mode child finished importing {module} (and the other job "
                    "modules) in time; see the worker's log",
                    "",
                ) from None
            except (Fatal, Retry, RemoteError) as exc:
                # A dead child may not be reaped yet (is_alive() still True): never reuse it.
                healthy = not isinstance(exc, ChildDied)
                raise
            finally:
                if child is not None:
                    if healthy and child.proc.is_alive():
                        self._hand_over(child)
                    else:
                        self._discard(child)

    async def _take(self) -> _Child:
        """A ready child: an idle one, or the next to finish warming up."""
        while True:
            if self._closed:
                raise RuntimeError("the process pool is closed")
            self.start()  # the first job starts the pool; replaces children that died idle
            if self._idle:
                child = self._idle.pop()
            else:
                waiter: asyncio.Future[_Child] = asyncio.get_running_loop().create_future()
                self._waiters.append(waiter)
                try:
                    child = await waiter
                except asyncio.CancelledError:
                    if waiter.done() and not waiter.cancelled():
                        self._hand_over(waiter.result())  # given to us as we were cancelled
                    raise
            if child.proc.is_alive():
                return child
            self._discard(child)

    def _hand_over(self, child: _Child) -> None:
        """A ready child goes to the longest-waiting job, or becomes idle."""
        if self._closed:
            self._discard(child)
            return
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(child)
                return
        self._idle.append(child)

    def _discard(self, child: _Child) -> None:
        """Kill a child that may not be reused, and start its replacement."""
        if child in self._children:
            self._children.discard(child)
            self._alive -= 1
        child.kill()
        if not self._closed:
            self.start()

    async def _warm(self) -> None:
        """Start one child and wait until it has imported the handlers."""
        child: _Child | None = None
        try:
            await asyncio.sleep(RESTART_BACKOFF_S[min(self._failures, len(RESTART_BACKOFF_S) - 1)])
            child = await self._threads.run(self._spawn, "starting a process-mode child")
            async with asyncio.timeout(self.startup_limit):
                msg = await self._recv(child)
        except asyncio.CancelledError:  # the pool is closing
            self._drop(child)
            raise
        except Exception as exc:
            self._failures += 1
            modules = ", ".join(sorted({m for m, _, _ in self._targets})) or "no job modules"
            reason = (
                f"not ready within {self.startup_limit:g}s"
                if isinstance(exc, TimeoutError)
                else exc
            )
            log.error("process-mode child failed to start (importing %s): %s", modules, reason)
            self._drop(child)  # and start another, after a back-off
            return
        self._failures = 0
        for handler, error in msg[1]:
            if (handler, error) not in self._reported:  # once, not once per child
                self._reported.add((handler, error))
                log.error("process-mode child could not import %s: %s", handler, error)
        self._hand_over(child)

    def _drop(self, child: _Child | None) -> None:
        """A warm-up that did not produce a ready child."""
        if child is not None:
            self._discard(child)
        else:
            self._alive -= 1
            if not self._closed:
                self.start()

    def _spawn(self) -> _Child:
        child = _Child(self._mp, self._targets)
        # Known at once, so close() kills it even if its warm-up was cancelled meanwhile;
        # and killed here if close() has run already.
        self._children.add(child)
        if self._closed:
            child.kill()
        return child

    async def _recv(self, child: _Child) -> tuple[Any, ...]:
        try:
            return await self._threads.run(child.recv, "process-mode pipe")
        except (EOFError, OSError):
            raise _died(child) from None

    def drain(self) -> None:
        """The worker is stopping: jobs still running keep their children, but a child that
        ends (its job done, cancelled or timed out) is not replaced. Children warming now go
        on: a job claimed just before may still get one within the grace period."""
        self._draining = True

    def close(self) -> None:
        """Kill every child; stop warming new ones."""
        self._closed = True
        for task in self._warming:
            task.cancel()
        for child in [*self._children, *self._idle]:
            child.kill()
        self._children.clear()
        self._idle.clear()
        self._threads.close()


def _send(child: _Child, msg: tuple[Any, ...]) -> None:
    try:
        child.conn.send(msg)
    except OSError:  # it died idle, after the last look at it
        raise _died(child) from None


def _died(child: _Child) -> ChildDied:
    code = child.proc.exitcode
    return ChildDied("ChildProcessDied", f"process-mode child died (exit code {code})", "")


def _fields(ctx: JobContext) -> dict[str, Any]:
    return {
        "id": ctx.id,
        "queue": ctx.queue,
        "name": ctx.name,
        "attempt": ctx.attempt,
        "max_attempts": ctx.max_attempts,
        "group": ctx.group,
        "reschedules": ctx.reschedules,
    }


def _outcome(msg: tuple[Any, ...], ctx: JobContext) -> str | None:
    """The result of a job's final message (raises what the handler raised), or None for a
    progress/log update."""
    kind = msg[0]
    if kind == "touch":
        ctx.writer(None if msg[1] == "" else _loads(msg[1]), msg[2])
        return None
    if kind == "ok":
        return str(msg[1])
    if kind == "retry":
        cls = RateLimited if len(msg) > 3 and msg[3] else Retry
        raise cls(float(msg[1]), msg[2])
    if kind == "fatal":
        raise Fatal(f"{msg[1]}: {msg[2]}")
    raise RemoteError(msg[1], msg[2], msg[3], msg[4] if len(msg) > 4 else ())


def _loads(raw: str) -> Any:
    return from_json(raw)
