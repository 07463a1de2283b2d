"""workers.lua: the registry of live workers. A heartbeat writes a worker's entry, alive for three
heartbeat intervals by the server's clock; a worker that exits removes itself; readers and
heartbeats drop the entries of workers that are gone."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
import redis

from corral import App
from corral.embedded import EmbeddedServer
from corral.engine import Engine
from corral.errors import ServerError
from corral.models import WorkerInfo

from .helpers import server_ms


def info(worker_id: str, *, heartbeat_ms: int = 10_000, jobs: tuple[str, ...] = ()) -> WorkerInfo:
    return WorkerInfo(
        id=worker_id,
        host="box-1",
        pid=4242,
        queues=("recipes", "emails"),
        concurrency=10,
        running=len(jobs),
        jobs=jobs,
        started_at=datetime(2026, 1, 1, 12, 0, tzinfo=UTC),
        version="0.1.0",
        heartbeat=timedelta(milliseconds=heartbeat_ms),
    )


async def test_a_heartbeat_registers_a_worker_alive_for_three_intervals(
    engine: Engine, raw: redis.Redis
) -> None:
    before = server_ms(raw)
    await engine.register_worker(info("box-1:4242:abcdef", jobs=("j1", "j2")))
    after = server_ms(raw)

    (listed,) = await engine.workers()
    assert listed.id == "box-1:4242:abcdef"
    assert (listed.host, listed.pid, listed.queues) == ("box-1", 4242, ("recipes", "emails"))
    assert (listed.concurrency, listed.running, listed.jobs) == (10, 2, ("j1", "j2"))
    assert listed.started_at == datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
    assert (listed.version, listed.heartbeat) == ("0.1.0", timedelta(seconds=10))
    assert listed.last_heartbeat is not None and listed.alive_until is not None
    beat_ms = listed.last_heartbeat.timestamp() * 1000
    assert before - 1 <= beat_ms <= after + 1  # the server's clock, not the caller's
    assert listed.alive_until - listed.last_heartbeat == timedelta(seconds=30)

    k = engine.worker_keys
    assert raw.hkeys(k.info) == ["box-1:4242:abcdef"]
    assert raw.zscore(k.alive, "box-1:4242:abcdef") == pytest.approx(beat_ms + 30_000)


async def test_the_next_heartbeat_rewrites_the_entry(engine: Engine) -> None:
    await engine.register_worker(info("w1", jobs=("j1",)))
    first = (await engine.workers())[0]
    await asyncio.sleep(0.01)
    await engine.register_worker(info("w1", jobs=()))
    (again,) = await engine.workers()
    assert (again.running, again.jobs) == (0, ())
    assert again.alive_until is not None and first.alive_until is not None
    assert again.alive_until > first.alive_until


async def test_a_worker_that_leaves_is_gone_at_once(engine: Engine, raw: redis.Redis) -> None:
    await engine.register_worker(info("w1"))
    await engine.register_worker(info("w2"))
    await engine.unregister_worker("w1")
    assert [w.id for w in await engine.workers()] == ["w2"]
    await engine.unregister_worker("w1")  # twice: nothing to do
    await engine.unregister_worker("w2")
    k = engine.worker_keys
    assert raw.exists(k.info, k.alive) == 0  # nothing left behind


async def test_a_worker_that_missed_three_heartbeats_is_dropped_by_readers(
    engine: Engine, raw: redis.Redis
) -> None:
    await engine.register_worker(info("dying", heartbeat_ms=20))  # alive for 60 ms
    await engine.register_worker(info("steady"))
    assert [w.id for w in await engine.workers()] == ["dying", "steady"]
    await asyncio.sleep(0.15)
    assert [w.id for w in await engine.workers()] == ["steady"]
    k = engine.worker_keys
    assert raw.hkeys(k.info) == ["steady"]  # pruned, not only hidden
    assert raw.zrange(k.alive, 0, -1) == ["steady"]


async def test_a_heartbeat_drops_the_entries_of_workers_that_are_gone(
    engine: Engine, raw: redis.Redis
) -> None:
    await engine.register_worker(info("dying", heartbeat_ms=20))
    await asyncio.sleep(0.15)
    await engine.register_worker(info("steady"))
    k = engine.worker_keys
    assert raw.hkeys(k.info) == ["steady"]  # with no reader at all, the registry stays small


async def test_workers_are_listed_by_id_and_a_garbled_entry_is_skipped(
    engine: Engine, raw: redis.Redis
) -> None:
    for worker_id in ("c", "a", "b"):
        await engine.register_worker(info(worker_id))
    k = engine.worker_keys
    raw.hset(k.info, "b", "not json")
    assert [w.id for w in await engine.workers()] == ["a", "c"]


async def test_the_registry_is_per_prefix(engine: Engine, server: EmbeddedServer) -> None:
    await engine.register_worker(info("w1"))
    async with App.from_url(server.url, prefix="elsewhere-" + engine.prefix) as other:
        assert await other.workers() == []


async def test_an_unknown_action_or_a_bad_window_is_refused(engine: Engine) -> None:
    k = engine.worker_keys
    with pytest.raises(ServerError, match="unknown workers action"):
        await engine._run_on("workers", [k.info, k.alive], ["nonsense"])
    with pytest.raises(ServerError, match="bad workers window"):
        await engine._run_on("workers", [k.info, k.alive], ["beat", "w1", "{}", "0"])
