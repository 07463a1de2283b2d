"""Issue 13, "who is working": two real worker processes register themselves, ``corral workers``
(a subprocess) and ``App.workers()`` list them with what they run; one that exits removes
itself, one that is killed is dropped once it has missed three heartbeats."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis

import corral
from corral import App, WorkerInfo
from corral.embedded import EmbeddedServer
from tests.integration._cli import Cli
from tests.integration.test_cli_words import documented_fields

JOBS_MODULE = """
import asyncio
from corral import App
app = App.from_env()

@app.job(queue="shop")
async def slow_sync(seconds: float) -> None:
    await asyncio.sleep(seconds)
"""
LEASE_MS = 1500  # heartbeats every 0.5 s: a killed worker is gone after 1.5 s


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    tool = Cli(server, prefix, tmp_path, JOBS_MODULE)
    tool.env["CORRAL_LEASE_MS"] = str(LEASE_MS)
    return tool


async def until(
    check: Callable[[], Awaitable[list[WorkerInfo]]],
    ok: Callable[[list[WorkerInfo]], bool],
    timeout: float = 20.0,
) -> list[WorkerInfo]:
    deadline = time.monotonic() + timeout
    while True:
        found = await check()
        if ok(found):
            return found
        assert time.monotonic() < deadline, f"not reached: {found}"
        await asyncio.sleep(0.05)


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


async def test_two_workers_are_listed_until_they_exit_or_die(
    app: App, cli: Cli, raw: redis.Redis
) -> None:
    @app.job(queue="shop")
    async def slow_sync(seconds: float) -> None:
        await asyncio.sleep(seconds)

    await app.queue("shop").create()
    args = ("worker", "shopapp:app", "-q", "shop", "--concurrency", "3", "--grace", "1")
    first = cli.popen(*args, cwd=cli.app_dir)
    second = cli.popen(*args, cwd=cli.app_dir)
    try:
        listed = await until(app.workers, lambda found: len(found) == 2)
        by_pid = {w.pid: w for w in listed}
        assert set(by_pid) == {first.pid, second.pid}
        for w in listed:
            assert w.id.startswith(f"{socket.gethostname()}:{w.pid}:")
            assert (w.host, w.queues, w.concurrency) == (socket.gethostname(), ("shop",), 3)
            assert w.version == corral.__version__
            assert w.heartbeat == timedelta(milliseconds=LEASE_MS / 3)
            assert w.started_at is not None and w.last_heartbeat is not None
            assert w.started_at <= datetime.now(UTC) + timedelta(seconds=1)
            assert w.alive_until is not None and w.alive_until > w.last_heartbeat

        job = await slow_sync.enqueue(30)
        busy = await until(app.workers, lambda found: any(w.jobs for w in found))
        (runner,) = [w for w in busy if w.jobs]
        assert (runner.running, runner.jobs) == (1, (job.id,))
        assert (await job.info()).worker == runner.id

        shown = cli("workers", "--json")
        assert [w["id"] for w in shown] == sorted(w.id for w in listed)
        assert set(shown[0]) == documented_fields("### `corral workers --json`")
        row = next(w for w in shown if w["id"] == runner.id)
        assert (row["host"], row["pid"], row["queues"]) == (runner.host, runner.pid, ["shop"])
        assert (row["concurrency"], row["running"], row["jobs"]) == (3, 1, [job.id])
        assert row["version"] == corral.__version__ and row["heartbeat"] == LEASE_MS / 3000
        for field in ("started_at", "last_heartbeat", "alive_until"):
            assert datetime.fromisoformat(row[field]).tzinfo is not None
        human = cli("workers").stdout
        assert "2 alive" in human and "1/3" in human and job.id in human
        for w in listed:
            assert w.id in human

        # A worker that exits removes itself at once (its job is handed back).
        leaving = first if runner.pid == first.pid else second
        staying = second if leaving is first else first
        leaving.send_signal(signal.SIGTERM)
        assert leaving.wait(timeout=20) == 0
        (left,) = await app.workers()
        assert left.pid == staying.pid
        assert [w["pid"] for w in cli("workers", "--json")] == [staying.pid]

        # One that is killed stays listed only until it misses three heartbeats.
        staying.kill()
        staying.wait(timeout=10)
        killed = time.monotonic()
        await until(app.workers, lambda found: not found, timeout=LEASE_MS / 1000 + 5)
        assert time.monotonic() - killed < LEASE_MS / 1000 + 2
        assert cli("workers", "--json") == []
        assert "no live workers" in cli("workers").stdout
        k = (await app.engine()).worker_keys
        assert raw.exists(k.info, k.alive) == 0  # the reader pruned the entry
    finally:
        stop(first)
        stop(second)
