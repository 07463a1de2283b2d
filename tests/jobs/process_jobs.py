"""Process-mode handlers for the integration tests.

Process-mode children import the handler by module and name, so these live at module level in
an importable module. Tests point ``app`` at their server and prefix with ``app.configure``
before connecting (and close it afterwards, so the next test can configure it again).
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from pydantic import BaseModel

from corral import App, Fatal, Fixed, Retry, RetryPolicy, current_job

app = App(name="corral-test-process")

ONE_ATTEMPT = RetryPolicy(attempts=1, backoff=Fixed(timedelta(0)))


class Matrix(BaseModel):
    rows: list[list[int]]


class Summary(BaseModel):
    total: int
    pid: int


@app.job(queue="proc", mode="process")
def crunch(matrix: Matrix, scale: int = 1) -> Summary:
    """CPU work; reports the pid so tests can see it ran in a child process."""
    return Summary(total=sum(sum(r) for r in matrix.rows) * scale, pid=os.getpid())


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT)
def whoami() -> int:
    return os.getpid()


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT, timeout=timedelta(milliseconds=500))
def hang(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT)
def read_file(path: str) -> str:
    with open(path) as fh:  # FileNotFoundError, an OSError: its class chain comes back
        return fh.read()


@app.job(queue="proc", mode="process")
def report_progress(steps: int) -> str:
    job = current_job()
    for i in range(1, steps + 1):
        job.log(f"step {i} of {steps} (attempt {job.attempt}, pid {os.getpid()})")
        job.progress(int(i * 100 / steps))
    return f"{job.name}:{job.queue}"


@app.job(queue="proc", mode="process", retry=RetryPolicy(attempts=2, backoff=Fixed(timedelta(0))))
def explode(message: str) -> None:
    raise ValueError(message)


@app.job(queue="proc", mode="process", retry=RetryPolicy(attempts=5, backoff=Fixed(timedelta(0))))
def give_up(message: str) -> None:
    raise Fatal(message)


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT, max_reschedules=5)
def come_back(marker: str) -> int:
    """Asks to be run again once (keeps state in a file: each run may be in another child)."""
    if not os.path.exists(marker):
        with open(marker, "w") as f:
            f.write("seen")
        raise Retry(0.05)
    return current_job().attempt


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT)
def die_hard() -> None:
    os._exit(3)


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT)
def count_to(n: int) -> int:
    return n


class Unprintable(Exception):
    def __str__(self) -> str:
        raise RuntimeError("cannot print me")

    def __repr__(self) -> str:
        raise RuntimeError("cannot repr me either")


@app.job(queue="proc", mode="process", retry=ONE_ATTEMPT)
def raise_unprintable() -> None:
    raise Unprintable("secret")
