"""A handle on one group (tenant) of a queue: pause/resume, own limits, state."""

from __future__ import annotations

from corral.groups import RateLimit, check_concurrency, check_weight
from corral.models import GroupState
from corral.scope import QueueScope


class Group:
    """One tenant's slice of a queue: pause/resume it, give it its own limits, inspect it."""

    def __init__(self, queue: QueueScope, name: str) -> None:
        self.queue = queue
        self.name = name

    async def _action(self, action: str, **settings: str) -> bool:
        if action == "limits":  # configuring declares the queue; acting needs it to exist
            await self.queue.create()
            engine = await self.queue.client.engine()
        else:
            engine = await self.queue._existing()
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

    async def exists(self) -> bool:
        """Whether the queue knows this group: it has waiting or running jobs, is paused, or
        has settings of its own (``Queue.groups`` lists it)."""
        engine = await self.queue._existing()
        return await engine.group_known(self.queue.name, self.name)

    async def state(self) -> GroupState:
        engine = await self.queue._existing()
        (state,) = await engine.group_states(self.queue.name, [self.name])
        return state
