"""Jobs for the chaos tests, run by real ``corral worker tests.jobs.chaos_jobs:app`` processes.

Handlers append their events to the file named by ``CHAOS_TRACE`` (see ``harness.chaos.trace``)
and return the pid of the worker that ran them, so a test can tell which worker's result won.
``CHAOS_ROLE`` changes how a worker's handlers behave:

- ``victim``: hang (the test SIGKILLs the worker mid-job);
- ``stale``: block the whole event loop until the file ``CHAOS_GATE`` exists, as a process
  frozen by SIGSTOP or a long GC pause would (no heartbeats), then finish with the outcome
  the payload asks for.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from datetime import timedelta
from typing import Literal

from corral import App, Fixed, Retry, RetryPolicy
from harness.chaos import trace

app = App.from_env()

ROLE = os.environ.get("CHAOS_ROLE", "")
FAST_RETRY = RetryPolicy(attempts=3, backoff=Fixed(timedelta(milliseconds=50)))


def _freeze_until_gate() -> None:
    gate = os.environ["CHAOS_GATE"]
    deadline = time.monotonic() + 60
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.01)  # blocks the event loop on purpose


@app.job(queue="chaos", retry=FAST_RETRY)
async def work(
    n: int, ms: int = 0, stale_outcome: Literal["result", "failure", "retry"] = "result"
) -> int:
    trace("start")
    if ROLE == "victim":
        await asyncio.sleep(3600)
    if ROLE == "stale":
        _freeze_until_gate()
        if stale_outcome == "failure":
            raise RuntimeError("late failure from a stale worker")
        if stale_outcome == "retry":
            raise Retry(0.05, "late retry from a stale worker")
    if ms:
        await asyncio.sleep(ms / 1000)
    trace("ok")
    return os.getpid()


@app.job(queue="chaos", retry=FAST_RETRY)
def work_in_thread(n: int, ms: int = 0) -> int:
    trace("start")
    time.sleep(ms / 1000)
    trace("ok")
    return os.getpid()


class Unpicklable(Exception):
    """Holds a lock, so ``pickle`` refuses it (as exceptions carrying a client or a socket do)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.lock = threading.Lock()


ONE_ATTEMPT = RetryPolicy(attempts=1, backoff=Fixed(timedelta(0)))


@app.job(queue="chaos-proc", mode="process", retry=ONE_ATTEMPT)
def raise_unpicklable(message: str) -> None:
    raise Unpicklable(message)


@app.job(queue="chaos-proc", mode="process", retry=ONE_ATTEMPT)
def raise_local_class(message: str) -> None:
    class Local(Exception):  # pickle cannot find it by name
        pass

    raise Local(message)


@app.job(queue="chaos-proc", mode="process", retry=ONE_ATTEMPT)
def echo_pid(n: int) -> int:
    return os.getpid()
