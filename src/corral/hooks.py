"""Lifecycle hooks an App registers (``@app.on_complete``, ``@app.on_failure``,
``@app.on_dead``, ``@app.on_startup``, ``@app.on_shutdown``): what to call, kept with the App;
the worker runs them (``worker/hook_runner.py``).

A job hook takes the :class:`~corral.models.JobEvent`; a startup or shutdown hook takes
nothing (open and close the app's database pool there). Either may be ``async def`` or plain.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

from corral.errors import ConfigError
from corral.models import JobEvent

JobHook = Callable[[JobEvent], Awaitable[None] | None]
WorkerHook = Callable[[], Awaitable[None] | None]


@dataclass(slots=True)
class Hooks:
    """The hooks of one App, in registration order, and how long any one call may take."""

    on_complete: list[JobHook] = field(default_factory=list)
    on_failure: list[JobHook] = field(default_factory=list)
    on_dead: list[JobHook] = field(default_factory=list)
    on_startup: list[WorkerHook] = field(default_factory=list)
    on_shutdown: list[WorkerHook] = field(default_factory=list)
    timeout: timedelta = timedelta(seconds=10)

    @property
    def for_jobs(self) -> bool:
        return bool(self.on_complete or self.on_failure or self.on_dead)

    def for_event(self, event: JobEvent) -> list[JobHook]:
        """The hooks an outcome calls: completed -> on_complete; each failed attempt ->
        on_failure (``event.will_retry`` says whether it runs again); dead -> on_dead."""
        hooks: list[JobHook] = []
        if event.outcome == "completed":
            hooks += self.on_complete
        if event.error is not None and event.outcome in ("retried", "dead"):
            hooks += self.on_failure
        if event.outcome == "dead":
            hooks += self.on_dead
        return hooks


def check_hook(fn: object) -> None:
    if not callable(fn):
        raise ConfigError(f"a hook must be a function, got {fn!r}")
