"""Daemon threads for calls that may never return: thread-mode handlers and pipe reads.

``concurrent.futures.ThreadPoolExecutor`` joins its threads when the interpreter exits (and
``asyncio.Runner.close()`` joins the loop's default executor), so one handler stuck in a hung
call would keep the worker's process alive forever after shutdown. These threads are daemons:
one still busy when the process exits is abandoned with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass(slots=True)
class _Call(Generic[T]):
    fn: Callable[[], T]
    future: asyncio.Future[T]
    loop: asyncio.AbstractEventLoop
    label: str
    abandoned: bool = False


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # cancelled meanwhile: nobody waits for the outcome
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


class DaemonThreads:
    """Up to ``limit`` daemon threads, started on demand and reused; ``run`` returns an
    asyncio future. ``busy()`` names the calls still running, so whoever abandons them at
    shutdown can say which."""

    def __init__(self, limit: int, name: str) -> None:
        self.limit = max(1, limit)
        self._name = name
        self._calls: queue.SimpleQueue[_Call[Any] | None] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # one permit per thread waiting for a call
        self._lock = threading.Lock()
        self._threads: set[threading.Thread] = set()
        self._busy: dict[int, _Call[Any]] = {}  # thread ident -> the call it runs
        self._abandoned = 0  # busy threads whose caller gave up on them: not counted
        self._numbers = itertools.count()
        self._closed = False

    def run(self, fn: Callable[[], T], label: str = "") -> asyncio.Future[T]:
        """Call ``fn`` in a thread; the future is settled on the calling loop. Cancelling it
        before a thread takes the call skips the call; once running, the call is not stopped."""
        if self._closed:
            raise RuntimeError(f"{self._name} threads are closed")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._calls.put(_Call(fn, future, loop, label))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if len(self._threads) - self._abandoned < self.limit:
                    thread = threading.Thread(
                        target=self._serve,
                        name=f"{self._name}-{next(self._numbers)}",
                        daemon=True,
                    )
                    self._threads.add(thread)
                    thread.start()
        return future

    def busy(self) -> list[str]:
        """Labels of the calls running now."""
        with self._lock:
            return [call.label for call in self._busy.values()]

    def abandon(self, future: asyncio.Future[Any]) -> None:
        """The caller no longer waits for this call (it timed out): if a thread is running
        it, that thread stops counting against the limit, so calls that hang cannot take up
        every thread for good. The thread returns to the pool when the call returns."""
        with self._lock:
            for call in self._busy.values():
                if call.future is future and not call.abandoned:
                    call.abandoned = True
                    self._abandoned += 1

    def close(self) -> None:
        """Idle threads exit, busy ones once their call returns; calls not started are
        cancelled. Nothing is joined."""
        self._closed = True
        while True:
            try:
                call = self._calls.get_nowait()
            except queue.Empty:
                break
            if call is not None:
                with contextlib.suppress(RuntimeError):  # a closed loop cancels it anyway
                    call.loop.call_soon_threadsafe(call.future.cancel)
        with self._lock:
            for _ in self._threads:
                self._calls.put(None)

    def _serve(self) -> None:
        me, ident = threading.current_thread(), threading.get_ident()
        try:
            while not self._closed:
                call = self._calls.get()
                if call is None:
                    return
                if call.future.cancelled():  # given up before it started
                    self._idle.release()
                    continue
                with self._lock:
                    self._busy[ident] = call
                try:
                    value, ok = call.fn(), True
                except BaseException as exc:  # handed to the awaiting coroutine
                    value, ok = exc, False
                finally:
                    with self._lock:
                        self._busy.pop(ident, None)
                        if call.abandoned:
                            self._abandoned -= 1
                self._deliver(call, ok=ok, value=value)
                del call, value  # not kept alive while idle
                self._idle.release()
        finally:
            with self._lock:
                self._threads.discard(me)

    @staticmethod
    def _deliver(call: _Call[Any], *, ok: bool, value: Any) -> None:
        try:
            call.loop.call_soon_threadsafe(_settle, call.future, ok, value)
        except RuntimeError:  # the loop is closed: the worker is gone, so is the interest
            log.debug("%s: outcome dropped, its event loop is closed", call.label or "call")
