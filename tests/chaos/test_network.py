"""Network faults between the workers and Redis (a proxy owned by the test): connections reset,
refused, stalled past the lease, or left half-open. No job is lost or left stuck, and the
worker processes carry on."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from corral import App, JobHandle
from corral.embedded import EmbeddedServer
from corral.engine.connection import make_client
from corral.settings import parse_redis_url
from corral.worker.idle import IDLE_WAIT_S
from harness.chaos import Fleet
from tests.chaos._helpers import wait_serving, wait_until
from tests.chaos._proxy import FaultyProxy
from tests.jobs.chaos_jobs import work

LEASE_MS = 1000


@pytest.fixture
async def proxy(fresh_server: Callable[..., EmbeddedServer]) -> AsyncIterator[FaultyProxy]:
    srv = fresh_server()
    assert srv.options.port is not None
    p = await FaultyProxy(srv.options.port).start()
    p.server = srv  # type: ignore[attr-defined]
    yield p
    await p.close()


async def _produce(app: App, handles: list[JobHandle[int]], stop: asyncio.Event) -> None:
    n = 0
    while not stop.is_set():
        handles.extend(await app.enqueue_many([work.prepare(n + i, ms=20) for i in range(10)]))
        n += 10
        await asyncio.sleep(0.1)


async def _settle(app: App, handles: list[JobHandle[int]], fleet: Fleet) -> None:
    pids = {p.pid for p in fleet.procs}
    for h in handles:
        assert await h.result(timeout=30) in pids
    counts = await app.queue("chaos").counts()
    assert (counts.pending, counts.dead, counts.completed) == (0, 0, len(handles))
    assert all(p.poll() is None for p in fleet.procs), "a worker process exited"


async def test_dropped_refused_and_stalled_connections(
    proxy: FaultyProxy,
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
) -> None:
    app = await chaos_app(proxy.server.url)  # type: ignore[attr-defined]  # producer: direct
    fleet = make_fleet(proxy.url, lease_ms=LEASE_MS, concurrency=8)
    await wait_serving(fleet, fleet.spawn(), fleet.spawn())
    handles: list[JobHandle[int]] = []
    stop = asyncio.Event()
    producer = asyncio.create_task(_produce(app, handles, stop))

    await asyncio.sleep(0.5)
    assert proxy.drop() > 0
    await asyncio.sleep(0.5)
    proxy.stall()  # longer than a lease: heartbeats and reapers are held too
    await asyncio.sleep(2 * LEASE_MS / 1000)
    proxy.resume()
    await asyncio.sleep(0.5)
    proxy.refuse(1.0)  # every connection reset, and new ones refused for a second
    await asyncio.sleep(1.5)
    proxy.drop()
    await asyncio.sleep(0.5)
    stop.set()
    await producer

    await _settle(app, handles, fleet)
    assert len(handles) >= 300


async def test_half_open_connections_are_abandoned(
    proxy: FaultyProxy,
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
) -> None:
    """Connections that go silent for ever (no RST, no FIN: the peer vanished) must be given
    up by the workers, or a heartbeat or fetch stuck on one would never return."""
    app = await chaos_app(proxy.server.url)  # type: ignore[attr-defined]
    fleet = make_fleet(proxy.url, lease_ms=LEASE_MS, concurrency=8)
    await wait_serving(fleet, fleet.spawn(), fleet.spawn())
    handles: list[JobHandle[int]] = []
    stop = asyncio.Event()
    producer = asyncio.create_task(_produce(app, handles, stop))
    await asyncio.sleep(0.5)
    assert proxy.blackhole() > 0
    await asyncio.sleep(1.0)
    stop.set()
    await producer
    assert proxy.swallowed > 0  # some request went into the hole
    # every request stuck in the hole is abandoned (socket timeout) and re-sent elsewhere
    await wait_until(lambda: proxy.hung_requests() == 0, 25, what="stuck requests abandoned")
    await _settle(app, handles, fleet)
    # both workers are whole again: heartbeats keep jobs longer than a lease alive
    slow = await app.enqueue_many([work.prepare(n, ms=1500) for n in range(16)])
    assert {await h.result(timeout=20) for h in slow} == {p.pid for p in fleet.procs}
    assert [(await h.info()).stalls for h in slow] == [0] * 16


def test_socket_timeout_outlasts_the_blocking_waits() -> None:
    """Finite (a silent connection is abandoned) but longer than BZPOPMIN/BLPOP's 5 s: with
    redis-py 8's default of 5 s every idle wait timed out client-side, and after the retries
    ``handle.result()`` raised redis' own TimeoutError instead of waiting."""
    client = make_client(parse_redis_url("redis://127.0.0.1:1/0"))
    timeout = client.connection_pool.connection_kwargs["socket_timeout"]
    assert IDLE_WAIT_S + 2 <= timeout <= 30
