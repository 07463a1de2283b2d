"""Fixtures for the chaos tests: servers we can SIGKILL, worker processes we can SIGKILL or
freeze, and the chaos jobs' App pointed at the test's server.

Every test starts its own server (never the shared one) and its own ``corral worker``
subprocesses; all of them are stopped at the end, and the workers die with the test process
(``PR_SET_PDEATHSIG``) if it is killed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from corral import App, Settings
from harness.chaos import Fleet, KillableServer
from tests.jobs import chaos_jobs


@pytest.fixture
def killable(tmp_path: Path) -> Iterator[Callable[..., KillableServer]]:
    """Start servers with AOF (appendfsync always) on a fixed port and directory."""
    started: list[KillableServer] = []

    def start(binary: Path | None = None) -> KillableServer:
        srv = KillableServer(tmp_path / f"redis-{len(started)}", binary=binary).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()


@pytest.fixture
def trace_path(tmp_path: Path) -> Path:
    return tmp_path / "trace.log"


@pytest.fixture
def make_fleet(tmp_path: Path, prefix: str, trace_path: Path) -> Iterator[Callable[..., Fleet]]:
    """``make_fleet(url, lease_ms=..., concurrency=...)``: worker processes serving
    ``tests.jobs.chaos_jobs:app``; all stopped (SIGTERM, then SIGKILL) at the end."""
    fleets: list[Fleet] = []

    def make(url: str, **kwargs: object) -> Fleet:
        fleet = Fleet(
            "tests.jobs.chaos_jobs:app",
            url,
            prefix,
            tmp_path / f"logs-{len(fleets)}",
            env={"CHAOS_TRACE": str(trace_path)},
            **kwargs,  # type: ignore[arg-type]
        )
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop(timeout=10)


@pytest.fixture
async def chaos_app(prefix: str) -> AsyncIterator[Callable[[str], Awaitable[App]]]:
    """``await chaos_app(url)``: the chaos jobs' App, connected to that server."""
    app = chaos_jobs.app

    async def connect(url: str) -> App:
        app.client.forget()  # a previous test's loop is gone
        app.configure(Settings.from_url(url, prefix=prefix))
        return await app.connect()

    yield connect
    await app.close()
