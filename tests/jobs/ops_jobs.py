"""Long-running jobs in each handler mode, for cancellation tests (process mode needs a module).

Each handler writes a marker file when it starts (with its pid) and when it notices it was
cancelled, so the test can see what happened inside the worker.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from corral import App, current_job

app = App.from_env()


def _mark(marker: str, what: str) -> None:
    with Path(marker).open("a") as fh:
        fh.write(f"{what} {os.getpid()}\n")


@app.job(queue="ops")
async def sleep_async(marker: str, seconds: float) -> str:
    _mark(marker, "start")
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        _mark(marker, "cancelled")
        raise
    return "finished"


@app.job(queue="ops", mode="thread")
def sleep_thread(marker: str, seconds: float) -> str:
    _mark(marker, "start")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if current_job().cancelled:
            _mark(marker, "cancelled")
            return "stopped early"
        time.sleep(0.01)
    return "finished"


@app.job(queue="ops", mode="process")
def sleep_process(marker: str, seconds: float) -> str:
    _mark(marker, "start")
    time.sleep(seconds)
    return "finished"
