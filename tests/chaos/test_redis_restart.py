"""Redis SIGKILLed and restarted on the same port and data (AOF, ``appendfsync always``) while
a producer enqueues and two worker processes run jobs: nobody restarts, nothing is lost."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import hiredis
import pytest

from corral import App, ConnectionLost, JobHandle
from corral.definition import PreparedJob
from corral.engine import Engine
from corral.engine.connection import make_client
from corral.engine.transport import Transport
from corral.settings import parse_redis_url
from harness.chaos import Fleet, KillableServer
from tests.chaos._helpers import wait_serving, wait_until
from tests.conftest import BINARIES
from tests.jobs.chaos_jobs import work

OUTAGE_S = 3.5  # longer than redis-py's retries (about 3 s), so some enqueue calls must fail
ENQUEUE_BOUND_S = 6.0  # no enqueue call may hang longer than this


@pytest.mark.parametrize("binary", sorted(BINARIES))
async def test_workers_and_producer_ride_out_a_redis_restart(
    killable: Callable[..., KillableServer],
    chaos_app: Callable[[str], Awaitable[App]],
    make_fleet: Callable[..., Fleet],
    binary: str,
) -> None:
    srv = killable(BINARIES[binary])
    app = await chaos_app(srv.url)
    fleet = make_fleet(srv.url, lease_ms=5000, concurrency=8)
    workers = [fleet.spawn(), fleet.spawn()]
    await wait_serving(fleet, *workers)  # (one starting while Redis is down exits: status 1)

    stored: list[tuple[float, JobHandle[int]]] = []  # (when enqueue returned, handle)
    refused: list[PreparedJob[int]] = []  # enqueue raised: maybe stored, maybe not
    slowest = 0.0
    stop = asyncio.Event()

    async def produce() -> None:
        nonlocal slowest
        n = 0
        while not stop.is_set():
            prepared = work.prepare(n, ms=20)
            t0 = time.monotonic()
            try:
                (handle,) = await app.enqueue_many([prepared])
                stored.append((time.monotonic(), handle))
            except ConnectionLost:
                refused.append(prepared)
            slowest = max(slowest, time.monotonic() - t0)
            n += 1
            await asyncio.sleep(0.01)

    producer = asyncio.create_task(produce())
    await wait_until(lambda: len(stored) >= 30, 20, what="jobs flowing")
    await stored[0][1].result(timeout=20)

    srv.kill()
    killed_at = time.monotonic()
    await asyncio.sleep(OUTAGE_S)
    srv.restart()
    restarted_at = time.monotonic()
    await wait_until(lambda: any(t > restarted_at for t, _ in stored), 20, what="enqueues again")
    await asyncio.sleep(0.5)
    stop.set()
    await producer

    # The outage was seen, and no enqueue call hung or lied about storing a job.
    assert refused, "no enqueue call failed during a 3.5 s outage"
    assert slowest < ENQUEUE_BOUND_S, slowest
    before = [h for t, h in stored if t < killed_at]
    after = [h for t, h in stored if t > restarted_at]
    assert before and after
    # Every job whose enqueue returned runs, on the same worker processes (none restarted).
    pids = {w.pid for w in workers}
    for _, h in stored:
        assert await h.result(timeout=30) in pids
    assert all(w.poll() is None for w in workers)
    # A refused enqueue re-sent with the same id stores it at most once.
    for prepared in refused:
        (again,) = await app.enqueue_many([prepared])
        assert await again.result(timeout=30) in pids
    counts = await app.queue("chaos").counts()
    assert counts.pending == 0
    assert counts.completed == len(stored) + len(refused)
    assert counts.dead == 0


async def test_a_server_still_loading_its_data_reads_as_unreachable() -> None:
    """Right after a restart the server answers every command with LOADING while it replays
    its AOF. That must be "not reachable yet" (ConnectionLost: retried by the worker's loops),
    not a script error that escapes the fetch loop and ends the worker process."""

    async def loading(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = hiredis.Reader()
        while data := await reader.read(65536):
            parser.feed(data)
            while parser.gets() is not False:
                writer.write(b"-LOADING Valkey is loading the dataset in memory\r\n")
        writer.close()

    server = await asyncio.start_server(loading, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    target = parse_redis_url(f"redis://127.0.0.1:{port}/0")
    engine = Engine(make_client(target, retries=1), Transport(target, retries=1), "t")
    try:
        with pytest.raises(ConnectionLost):
            await engine.claim("q", 1, "w", 1000)
        with pytest.raises(ConnectionLost):
            await engine.complete_and_claim("q", [("id", "1", "null")], 1, "w", 1000)
    finally:
        await engine.close()
        server.close()
