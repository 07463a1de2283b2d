"""The shared server: one per project, started under a lock, kept by a detached keeper.

Each test has its own home (``CORRAL_HOME``) and stops its server at the end.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from corral import ConfigError, devserver
from corral.devserver import ServerHome


@pytest.fixture
def home(tmp_path: Path) -> Iterator[ServerHome]:
    h = ServerHome(tmp_path / "home")
    yield h
    devserver.stop(h)


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_two_processes_starting_at_once_get_one_server(tmp_path: Path) -> None:
    # A home too deep for a unix socket path: the socket goes to /tmp/corral-<uid>/ instead.
    home = ServerHome(tmp_path / ("deep-" * 16) / "home")
    assert len(str(home.path / "redis.sock")) > devserver.MAX_SOCKET_PATH
    start = time.time() + 1.0
    code = (
        "import json, sys, time\n"
        "from pathlib import Path\n"
        "from corral import devserver\n"
        f"time.sleep(max(0.0, {start} - time.time()))\n"
        "state, started = devserver.ensure_running(devserver.ServerHome(Path(sys.argv[1])))\n"
        "print(json.dumps([state.keeper_pid, started, state.url]))\n"
    )
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(home.path)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    try:
        outs = [json.loads(p.communicate(timeout=90)[0]) for p in procs]
        assert all(p.returncode == 0 for p in procs)
        assert outs[0][0] == outs[1][0], "one keeper"
        assert sorted(o[1] for o in outs) == [False, True], "one of them started it"
        assert outs[0][2] == outs[1][2] == f"unix://{home.socket}"
        assert str(home.socket).startswith(f"/tmp/corral-{os.getuid()}/")
        assert home.socket.exists()
    finally:
        devserver.stop(home)
    assert not home.socket.exists()


def test_idle_server_stops_itself_and_keeps_its_data(home: ServerHome) -> None:
    state, started = devserver.ensure_running(home, idle=timedelta(seconds=1))
    assert started
    client = redis.Redis(unix_socket_path=str(home.socket))
    client.set("kept", "yes")
    time.sleep(2.5)  # idle time passes, but a client is connected
    assert devserver.is_running(home), "stopped while a client was connected"
    client.close()
    wait_for(lambda: not devserver.is_running(home), 10, "the idle server to stop")
    wait_for(lambda: not _alive(state.keeper_pid), 10, "the keeper to exit")
    assert not _alive(state.server_pid)
    assert not home.state_file.exists()

    devserver.ensure_running(home)
    again = redis.Redis(unix_socket_path=str(home.socket))
    assert again.get("kept") == b"yes"
    again.close()


def test_idle_time_comes_from_the_environment(
    home: ServerHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(devserver.ENV_IDLE, "90s")
    state, _ = devserver.ensure_running(home)
    assert state.idle_seconds == 90
    monkeypatch.setenv(devserver.ENV_IDLE, "soon")
    with pytest.raises(ConfigError, match=devserver.ENV_IDLE):
        devserver.idle_from_env()


def test_sigterm_to_the_keeper_stops_the_server(home: ServerHome) -> None:
    state, _ = devserver.ensure_running(home)
    os.kill(state.keeper_pid, signal.SIGTERM)
    wait_for(lambda: not _alive(state.keeper_pid), 10, "the keeper to exit")
    assert not _alive(state.server_pid)
    assert not home.state_file.exists()
    assert devserver.status(home).running is False


def test_a_dead_server_takes_its_keeper_down_and_is_restarted(home: ServerHome) -> None:
    state, _ = devserver.ensure_running(home)
    os.kill(state.server_pid, signal.SIGKILL)
    wait_for(lambda: not _alive(state.keeper_pid), 10, "the keeper to exit")
    assert not home.state_file.exists()
    again, started = devserver.ensure_running(home)
    assert started and again.keeper_pid != state.keeper_pid
