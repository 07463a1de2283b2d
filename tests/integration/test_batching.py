"""Concurrent enqueues share script calls, and each caller still gets exactly its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest
import redis

from corral import App, PayloadError
from corral.embedded import EmbeddedServer
from corral.engine import JobSpec, NewJob


async def test_concurrent_enqueues_are_coalesced(
    fresh_server: Callable[..., EmbeddedServer],
) -> None:
    srv = fresh_server()
    app = App.from_url(srv.url)

    @app.job(queue="q")
    async def task(n: int) -> int:
        return n

    client = redis.Redis.from_url(srv.url, decode_responses=True)
    async with app:
        await task.enqueue(-1)  # loads the script
        before = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
        handles = await asyncio.gather(*(task.enqueue(i) for i in range(200)))
        after = client.info("commandstats")["cmdstat_evalsha"]["calls"]
        assert after - before < 20  # 200 callers, a handful of round trips
        assert len({h.id for h in handles}) == 200
        assert all(h.created for h in handles)
        assert (await app.queue("q").counts()).waiting == 201

        # duplicates inside one tick: the first stores, the others are told it exists
        dupes = await asyncio.gather(
            *(task.with_options(job_id="same").enqueue(i) for i in range(5))
        )
        assert [h.created for h in dupes] == [True, False, False, False, False]
        assert (await app.queue("q").counts()).waiting == 202

        # each caller's enqueue_many stays atomic and separate from its neighbours'
        many = await asyncio.gather(
            *(app.enqueue_many([task.prepare(10 * k + i) for i in range(3)]) for k in range(10))
        )
        assert [len(m) for m in many] == [3] * 10
    client.close()


async def test_a_refused_batch_fails_only_its_caller(app: App) -> None:
    @app.job(queue="q")
    async def task(n: int) -> int:
        return n

    engine = await app.engine()
    good = [task.prepare(i).new for i in range(3)]
    bad = NewJob("bad", "{}", "", 0, JobSpec("task", "high"))  # type: ignore[arg-type]
    results = await asyncio.gather(
        engine.enqueue("q", good[:2]),
        engine.enqueue("q", [bad]),
        engine.enqueue("q", good[2:]),
        return_exceptions=True,
    )
    assert results[0] == [True, True]
    assert isinstance(results[1], PayloadError)
    assert results[2] == [True]
    assert (await app.queue("q").counts()).waiting == 3
    with pytest.raises(PayloadError):
        await engine.enqueue("q", [bad])
