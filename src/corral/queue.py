"""Queue handle: counts, pause/resume and retention settings for one queue."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from corral.engine.keys import check_queue_name
from corral.errors import ConfigError
from corral.groups import GroupState, RateLimit, check_concurrency, check_weight
from corral.job import check_group
from corral.schedule import from_epoch_ms, to_ms

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

    async def set_limits(
        self,
        *,
        group_concurrency: int | None = None,
        group_rate: RateLimit | None = None,
        rate: RateLimit | None = None,
        clear: bool = False,
    ) -> None:
        """Limits enforced by the claim script across every worker and process:
        ``group_concurrency`` running jobs per group, ``group_rate`` starts per group, ``rate``
        starts for the whole queue. ``clear=True`` first removes all three."""
        check_concurrency(group_concurrency, "group_concurrency")
        values: dict[str, int] = {}
        if clear:
            values.update(gconc=0, grate_n=0, grate_w=0, rate_n=0, rate_w=0)
        if group_concurrency is not None:
            values["gconc"] = group_concurrency
        if group_rate is not None:
            values.update(grate_n=group_rate.limit, grate_w=group_rate.window_ms)
        if rate is not None:
            values.update(rate_n=rate.limit, rate_w=rate.window_ms)
        if values:
            await (await self.app.engine()).configure(self.name, **values)

    def group(self, name: str) -> Group:
        return Group(self, check_group(name))

    async def groups(self, *, limit: int = 1000) -> list[GroupState]:
        """Groups with waiting or running jobs (or settings), at most ``limit``, by name."""
        engine = await self.app.engine()
        names: list[str] = []
        cursor = 0
        while True:
            cursor, page = await engine.scan_groups(self.name, cursor, 500)
            names.extend(page)
            if cursor == 0 or len(names) >= limit:
                break
        names = sorted(set(names))[:limit]
        return [_group_state(raw) for raw in await engine.group_states(self.name, names)]


class Group:
    """One tenant's slice of a queue: pause/resume it, give it its own limits, inspect it."""

    def __init__(self, queue: Queue, name: str) -> None:
        self.queue = queue
        self.name = name

    async def _action(self, action: str, **settings: str) -> bool:
        engine = await self.queue.app.engine()
        return await engine.group_action(self.queue.name, action, self.name, **settings)

    async def pause(self) -> None:
        """Workers skip this group; its running jobs finish. Other groups are unaffected."""
        await self._action("pause")

    async def resume(self) -> None:
        await self._action("resume")

    async def set_limits(
        self,
        *,
        concurrency: int | None = None,
        rate: RateLimit | None = None,
        weight: float | None = None,
        reset: bool = False,
    ) -> None:
        """Override the queue's per-group limits for this group; ``weight`` gives it a larger
        (or smaller) share of the turns. ``reset=True`` goes back to the queue defaults."""
        check_concurrency(concurrency)
        check_weight(weight)
        blank = "-" if reset else ""
        await self._action(
            "limits",
            concurrency=blank if concurrency is None else str(concurrency),
            rate=blank if rate is None else rate.encode(),
            weight=blank if weight is None else repr(float(weight)),
        )

    async def state(self) -> GroupState:
        engine = await self.queue.app.engine()
        (raw,) = await engine.group_states(self.queue.name, [self.name])
        return _group_state(raw)


def _group_state(raw: dict[str, Any]) -> GroupState:
    until = raw["limited_until_ms"]
    return GroupState(
        group=raw["group"],
        waiting=raw["waiting"],
        active=raw["active"],
        paused=raw["paused"],
        limited_until=from_epoch_ms(until) if until is not None else None,
        ready=raw["ready"],
        concurrency=raw["concurrency"],
        rate=RateLimit.decode(raw["rate"]),
        weight=raw["weight"],
    )
