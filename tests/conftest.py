"""Shared fixtures: real servers (embedded Valkey and Debian's redis-server) on free ports.

Each test gets its own key prefix on a session-wide server, so tests never see each other's
keys; tests that kill or restart a server start their own with ``fresh_server``.

The project's shared server (what an App with no URL uses) lives in a session temp dir for the
whole run (``CORRAL_HOME``, set before anything can start it, inherited by subprocesses), so
tests never write ``.corral/`` into the repo, and it is stopped when the session ends.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
import redis

from corral import App, devserver
from corral.embedded import EmbeddedServer, ServerOptions, find_server_binary, free_port


def _server_binaries() -> dict[str, Path]:
    wanted = os.environ.get("CORRAL_TEST_SERVERS", "valkey,redis").split(",")
    found: dict[str, Path] = {}
    if "valkey" in wanted:
        found["valkey"] = find_server_binary()
    server = shutil.which("redis-server")
    if "redis" in wanted and server and _version(server) >= (6, 2):  # we need ZADD GT/LT
        found["redis"] = Path(server)
    return found


def _version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout
    match = re.search(r"v=(\d+)\.(\d+)", out)
    return (int(match.group(1)), int(match.group(2))) if match else (0, 0)


BINARIES = _server_binaries()
_SESSION_HOME = pytest.StashKey[tuple[str, str | None]]()


def pytest_configure(config: pytest.Config) -> None:
    home = tempfile.mkdtemp(prefix="corral-home-")
    config.stash[_SESSION_HOME] = (home, os.environ.get(devserver.ENV_HOME))
    os.environ[devserver.ENV_HOME] = home


def pytest_unconfigure(config: pytest.Config) -> None:
    home, before = config.stash[_SESSION_HOME]
    try:
        devserver.stop(devserver.ServerHome(Path(home)))
    finally:
        shutil.rmtree(home, ignore_errors=True)
        if before is None:
            os.environ.pop(devserver.ENV_HOME, None)
        else:
            os.environ[devserver.ENV_HOME] = before


@pytest.fixture(scope="session", params=sorted(BINARIES), ids=lambda k: k)
def server(request: pytest.FixtureRequest) -> Iterator[EmbeddedServer]:
    srv = EmbeddedServer(ServerOptions(port=free_port()), binary=BINARIES[request.param])
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture
def prefix() -> str:
    return "t" + uuid.uuid4().hex[:10]


@pytest.fixture
def make_app(server: EmbeddedServer, prefix: str) -> Callable[..., App]:
    def make(**overrides: object) -> App:
        return App.from_url(server.url, prefix=prefix, **overrides)

    return make


@pytest.fixture
async def app(make_app: Callable[..., App]) -> AsyncIterator[App]:
    application = make_app()
    async with application:
        yield application


@pytest.fixture
def raw(server: EmbeddedServer) -> Iterator[redis.Redis]:
    """A plain sync client to look at keys directly."""
    client = redis.Redis.from_url(server.url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[Callable[..., EmbeddedServer]]:
    """Start servers this test owns (it may kill and restart them); all stopped at the end."""
    started: list[EmbeddedServer] = []

    def start(binary: str = "valkey", **options: object) -> EmbeddedServer:
        opts = ServerOptions(**{"port": free_port(), "dir": tmp_path / uuid.uuid4().hex, **options})  # type: ignore[arg-type]
        srv = EmbeddedServer(opts, binary=BINARIES.get(binary) or find_server_binary()).start()
        started.append(srv)
        return srv

    yield start
    for srv in started:
        srv.stop()
