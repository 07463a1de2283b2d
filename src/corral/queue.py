"""Queue handle: counts, pause/resume and retention settings for one queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from corral.engine.keys import check_queue_name
from corral.errors import ConfigError
from corral.schedule import to_ms

if TYPE_CHECKING:
    from corral.app import App


@dataclass(frozen=True, slots=True)
class QueueCounts:
    queue: str
    waiting: int
    delayed: int
    active: int
    completed: int
    dead: int
    paused: bool
    completed_trimmed: int
    dead_trimmed: int

    @property
    def pending(self) -> int:
        return self.waiting + self.delayed + self.active


class Queue:
    """Operations on one queue by name; needs no job code, so ops tools can use it."""

    def __init__(self, app: App, name: str) -> None:
        self.app = app
        self.name = check_queue_name(name)

    async def counts(self) -> QueueCounts:
        engine = await self.app.engine()
        c = await engine.counts(self.name)
        return QueueCounts(
            queue=self.name,
            waiting=c["waiting"],
            delayed=c["delayed"],
            active=c["active"],
            completed=c["completed"],
            dead=c["dead"],
            paused=bool(c["paused"]),
            completed_trimmed=c["completed_trimmed"],
            dead_trimmed=c["dead_trimmed"],
        )

    async def pause(self) -> None:
        """Workers stop claiming from this queue; running jobs finish."""
        await (await self.app.engine()).set_paused(self.name, True)

    async def resume(self) -> None:
        await (await self.app.engine()).set_paused(self.name, False)

    async def set_retention(
        self,
        *,
        completed_age: timedelta | None = None,
        completed_max: int | None = None,
        dead_age: timedelta | None = None,
        dead_max: int | None = None,
    ) -> None:
        """Queue-wide retention; jobs may override the ages with keep_completed/keep_dead."""
        limits: dict[str, int] = {}
        for name, age in (("completed_age", completed_age), ("dead_age", dead_age)):
            if age is not None:
                if age < timedelta(0):
                    raise ConfigError(f"{name} must not be negative")
                limits[name] = to_ms(age)
        for name, count in (("completed_max", completed_max), ("dead_max", dead_max)):
            if count is not None:
                if count < 0:
                    raise ConfigError(f"{name} must not be negative")
                limits[name] = count
        if limits:
            await (await self.app.engine()).configure(self.name, **limits)
