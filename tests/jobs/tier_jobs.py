"""Jobs for the tier tests: one job per queue (seed 003's tiers, and strict urgent/bulk), each
sleeping a little so every slot of a worker stays busy. Run by real `corral worker` processes
(``tests.jobs.tier_jobs:app``)."""

from __future__ import annotations

import asyncio

from corral import App

app = App.from_env()
TIERS = ("critical", "high", "standard", "low")
SLEEP_S = 0.02


def _define(queue: str) -> None:
    async def handler(n: int) -> int:
        await asyncio.sleep(SLEEP_S)
        return n

    handler.__name__ = handler.__qualname__ = f"work_{queue}"
    app.job(queue=queue)(handler)


for _queue in (*TIERS, "urgent", "bulk"):
    _define(_queue)
