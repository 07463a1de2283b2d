"""Process mode: CPU-bound sync handlers run in child processes we own.

We keep our own small pool instead of ProcessPoolExecutor because a timed-out or cancelled job
must kill exactly its child and replace it, which an executor cannot do.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from corral.context import JobContext
from corral.errors import Fatal, RateLimited, Retry
from corral.worker._child import child_main
from corral.worker.outcome import timeout_error

log = logging.getLogger(__name__)


class RemoteError(Exception):
    """An exception raised in a child process, carried back as text."""

    def __init__(self, type_name: str, message: str, tb: str) -> None:
        super().__init__(message)
        self.type_name = type_name
        self.remote_traceback = tb


class ChildDied(RemoteError):
    """The child exited mid-job (crash, ``os._exit``, OOM kill); it is never reused."""


class _Child:
    def __init__(self, ctx: multiprocessing.context.SpawnContext) -> None:
        parent, child = ctx.Pipe()
        self.conn: Connection = parent
        self.proc: BaseProcess = ctx.Process(target=child_main, args=(child,), daemon=True)
        self.proc.start()
        child.close()

    def kill(self) -> None:
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(2)
        self.conn.close()


class ProcessPool:
    """Up to ``size`` children, started on demand and reused."""

    def __init__(self, size: int) -> None:
        self.size = max(1, size)
        self._mp = multiprocessing.get_context("spawn")
        self._idle: list[_Child] = []
        self._count = 0
        self._free = asyncio.Semaphore(self.size)
        self._reader = ThreadPoolExecutor(self.size, thread_name_prefix="corral-proc")

    async def run(
        self, module: str, qualname: str, payload: str, ctx: JobContext, timeout: float | None
    ) -> str:
        async with self._free:
            child = self._idle.pop() if self._idle else await asyncio.to_thread(self._spawn)
            healthy = False
            try:
                fields = {
                    "id": ctx.id,
                    "queue": ctx.queue,
                    "name": ctx.name,
                    "attempt": ctx.attempt,
                    "max_attempts": ctx.max_attempts,
                    "group": ctx.group,
                    "reschedules": ctx.reschedules,
                }
                child.conn.send((module, qualname, payload, fields))
                result = await asyncio.wait_for(self._converse(child, ctx), timeout)
                healthy = True
                return result
            except TimeoutError:
                raise timeout_error(timeout or 0) from None
            except (Fatal, Retry, RemoteError) as exc:
                # A dead child may not be reaped yet (is_alive() still True): never reuse it.
                healthy = not isinstance(exc, ChildDied)
                raise
            finally:
                if healthy and child.proc.is_alive():
                    self._idle.append(child)
                else:
                    child.kill()
                    self._count -= 1

    def _spawn(self) -> _Child:
        self._count += 1
        return _Child(self._mp)

    async def _converse(self, child: _Child, ctx: JobContext) -> str:
        loop = asyncio.get_running_loop()
        while True:
            try:
                msg: tuple[Any, ...] = await loop.run_in_executor(self._reader, child.conn.recv)
            except (EOFError, OSError):
                code = child.proc.exitcode
                raise ChildDied(
                    "ChildProcessDied", f"process-mode child died (exit code {code})", ""
                ) from None
            kind = msg[0]
            if kind == "touch":
                ctx.writer(None if msg[1] == "" else _loads(msg[1]), msg[2])
            elif kind == "ok":
                return str(msg[1])
            elif kind == "retry":
                cls = RateLimited if len(msg) > 3 and msg[3] else Retry
                raise cls(float(msg[1]), msg[2])
            elif kind == "fatal":
                raise Fatal(f"{msg[1]}: {msg[2]}")
            else:
                raise RemoteError(msg[1], msg[2], msg[3])

    def close(self) -> None:
        for child in self._idle:
            child.kill()
        self._idle.clear()
        self._reader.shutdown(wait=False, cancel_futures=True)


def _loads(raw: str) -> Any:
    from corral.codec import from_json

    return from_json(raw)
