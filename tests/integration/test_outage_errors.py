"""While Redis is down, every API call fails with corral's ConnectionLost, never redis-py's."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from corral import App, ConnectionLost
from corral.embedded import EmbeddedServer


async def test_readers_and_writers_raise_connection_lost(
    fresh_server: Callable[..., EmbeddedServer],
) -> None:
    srv = fresh_server()
    app = App.from_url(srv.url, connect_retries=1)

    @app.job(queue="q")
    async def task(n: int) -> int:
        return n

    async with app:
        handle = await task.enqueue(1)
        queue = app.queue("q")
        srv.stop()
        calls = [
            lambda: task.enqueue(2),
            lambda: handle.info(),
            lambda: handle.result(timeout=1),
            queue.counts,
            lambda: queue.jobs("waiting"),
            lambda: queue.dead_letters.count(),
            lambda: queue.group("acme").state(),
            lambda: queue.pause(),
        ]
        for call in calls:
            with pytest.raises(ConnectionLost):
                await call()
