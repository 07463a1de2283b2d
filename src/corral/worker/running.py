"""A job this worker is running: what the fetch loop, the outcome recorder and the lease keeper
share about it."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from corral.context import JobContext
from corral.engine import Claimed


@dataclass(slots=True)
class Running:
    queue: str
    job: Claimed
    ctx: JobContext
    task: asyncio.Task[None]
    cancel_requested: bool = False
    recording: bool = False  # the handler is done; its outcome is being written
    queued: bool = False  # waiting for a turn under its name's limit: its handler has not begun

    def stop(self) -> None:
        """End this attempt here: the handler sees ``cancelled`` and its task is cancelled.
        Once the handler is done, its outcome's write is left to finish: it is fenced, and
        the script says what became of the job (refused, or cancelled instead of a retry);
        cancelling it midway would misreport a write that happened."""
        self.ctx.cancelled = True
        if not self.recording:
            self.task.cancel()
