"""Small helpers shared by the chaos tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

from harness.chaos import Fleet, read_trace
from tests.integration._helpers import wait_until

__all__ = ["started", "wait_serving", "wait_until"]


def started(trace_path: Path, pid: int | None = None) -> list[str]:
    """Ids of the jobs whose handler started (in worker ``pid``, if given), oldest first."""
    runs = sorted(read_trace(trace_path).values(), key=lambda r: r.at)
    return [r.job for r in runs if pid is None or r.pid == pid]


async def wait_serving(fleet: Fleet, *procs: subprocess.Popen[bytes]) -> None:
    """Wait until each worker process has connected and logged that it serves its queues."""
    for proc in procs:

        def serving(proc: subprocess.Popen[bytes] = proc) -> bool:
            return "serving" in fleet.log(proc)

        await wait_until(serving, 20, what=f"worker {proc.pid} to start")
