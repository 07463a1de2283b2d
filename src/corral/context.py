"""``current_job()``: what a running handler knows about its own job.

The worker sets a :class:`JobContext` in a context variable before calling the handler (in the
event loop, in the worker thread, or in the child process). Progress and log writes are fenced by
the job's token, so a handler whose lease was lost cannot write into the new attempt.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from corral.errors import CorralError

Writer = Callable[[Any, str], None]
"""``writer(progress, log_line)``: sends an update to Redis without blocking the handler."""


@dataclass(slots=True)
class JobContext:
    id: str
    queue: str
    name: str
    attempt: int
    max_attempts: int
    group: str | None
    writer: Writer = field(repr=False)
    reschedules: int = 0
    cancelled: bool = False
    _progress: Any = field(default=None, repr=False)

    def progress(self, value: Any) -> None:
        """Record progress: a number 0..100 or a small JSON-able value."""
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if number and not 0 <= value <= 100:
            raise ValueError(f"progress must be within 0..100, got {value}")
        self._progress = value
        self.writer(value, "")

    def log(self, line: str) -> None:
        """Append a line to the job's log (kept with the job, newest 1,000 lines)."""
        self.writer(None, str(line))

    @property
    def last_progress(self) -> Any:
        return self._progress


_current: contextvars.ContextVar[JobContext] = contextvars.ContextVar("corral_current_job")


def current_job() -> JobContext:
    """The job this handler is running; raises outside a handler."""
    try:
        return _current.get()
    except LookupError:
        raise CorralError("current_job() called outside a running job handler") from None


def set_current(ctx: JobContext) -> contextvars.Token[JobContext]:
    return _current.set(ctx)


def reset_current(token: contextvars.Token[JobContext]) -> None:
    _current.reset(token)
