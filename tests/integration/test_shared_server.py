"""The shared server: with no CORRAL_REDIS_URL, every process of a project uses one server.

Workers, producers and the CLI run as subprocesses, the way users run them in separate shells.
Each test has its own home (``CORRAL_HOME``) and stops its server at the end.
"""

from __future__ import annotations

import json
import logging
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

from corral import App, ConfigError, devserver
from corral.devserver import ServerHome

JOBS = """
import os, time
from corral import App
app = App.from_env()

@app.job(queue="shared")
def record(n: int, pause: float = 0.0) -> int:
    time.sleep(pause)
    with open(os.environ["MARKER"], "a") as fh:
        fh.write(f"{n}\\n")
    return n * 10
"""

PRODUCE = """
import sys
from jobs import record
pause = float(sys.argv[2]) if len(sys.argv) > 2 else 0.0
for n in range(int(sys.argv[1])):
    print(record.enqueue_sync(n, pause).id, flush=True)
"""

PRODUCE_AND_WAIT = """
import asyncio, sys
from datetime import timedelta
from jobs import app, record

async def main():
    async with app:
        handles = [await record.enqueue(n) for n in range(int(sys.argv[1]))]
        for h in handles:
            print(await h.result(timeout=timedelta(seconds=30)), flush=True)

asyncio.run(main())
"""

NOTICE = "using the project's shared server"


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Path]:
    """A user's project: a pyproject.toml, a jobs module, and its shared server stopped at
    the end."""
    root = tmp_path / "proj"
    root.mkdir()
    (root / "pyproject.toml").write_text("[project]\nname = 'shop'\n")
    (root / "jobs.py").write_text(JOBS)
    yield root
    devserver.stop(ServerHome(root / ".corral"))


@pytest.fixture
def home(tmp_path: Path) -> Iterator[ServerHome]:
    h = ServerHome(tmp_path / "home")
    yield h
    devserver.stop(h)


def user_env(project: Path, home: ServerHome | None = None, **extra: str) -> dict[str, str]:
    """A user's shell: no URL, no prefix; CORRAL_HOME only when ``home`` is given."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("CORRAL_REDIS_URL", "CORRAL_PREFIX", devserver.ENV_HOME)
    }
    env["PYTHONPATH"] = str(project)
    env["MARKER"] = str(project / "marker.txt")
    env["COLUMNS"] = "500"  # the worker's log lines unwrapped
    if home is not None:
        env[devserver.ENV_HOME] = str(home.path)
    env.update(extra)
    return env


def run(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def corral(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return run(["-m", "corral", *args], env, cwd)


def marker_lines(project: Path) -> list[str]:
    path = project / "marker.txt"
    return path.read_text().split() if path.exists() else []


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


def test_worker_and_producer_in_separate_processes_share_one_server(project: Path) -> None:
    """No URL, no CORRAL_HOME: a worker started in the project and a producer started in a
    subdirectory find the same server (.corral at the project root), and the jobs run."""
    env = user_env(project)
    worker = subprocess.Popen(
        [sys.executable, "-m", "corral", "worker", "jobs:app", "--concurrency", "4"],
        env=env,
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sub = project / "src" / "shop"
        sub.mkdir(parents=True)
        producer = run(["-c", PRODUCE_AND_WAIT, "5"], env, sub)
        assert producer.returncode == 0, producer.stderr
        assert producer.stdout.split() == ["0", "10", "20", "30", "40"]
        assert producer.stderr.count(NOTICE) == 1, producer.stderr  # one line, once
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "5 completed" in err
    assert NOTICE in err
    home = project / ".corral"
    assert (home / "server.json").exists(), "the server outlives both processes"
    assert (home / ".gitignore").read_text().splitlines()[-1] == "*"
    assert sorted(marker_lines(project)) == ["0", "1", "2", "3", "4"]


def test_waiting_jobs_survive_a_server_stop(project: Path, home: ServerHome) -> None:
    """Jobs enqueued with no worker running; the server stopped; a worker started later finds
    them (the append-only file)."""
    env = user_env(project, home)
    produced = run(["-c", PRODUCE, "3"], env, project)
    assert produced.returncode == 0, produced.stderr
    info = corral(["info", "--json"], env, project)  # operator commands use it too
    assert info.returncode == 0, info.stderr
    assert [(q["queue"], q["waiting"]) for q in json.loads(info.stdout)] == [("shared", 3)]

    stop = corral(["server", "stop"], env, project)
    assert stop.returncode == 0, stop.stderr
    assert corral(["server", "status"], env, project).returncode == 1

    worker = corral(["worker", "jobs:app", "--burst"], env, project)
    assert worker.returncode == 0, worker.stderr
    assert "3 completed" in worker.stderr
    assert sorted(marker_lines(project)) == ["0", "1", "2"]
    assert [p.name for p in (home.data / "appendonlydir").iterdir()], "data in <home>/data"


def test_waiting_jobs_survive_a_worker_restart(project: Path, home: ServerHome) -> None:
    """SIGTERM a worker half-way through the queue, start another: it runs the rest."""
    env = user_env(project, home)
    produced = run(["-c", PRODUCE, "6", "0.3"], env, project)
    assert produced.returncode == 0, produced.stderr
    args = [sys.executable, "-m", "corral", "worker", "jobs:app", "--concurrency", "1"]
    first = subprocess.Popen(args, env=env, cwd=project, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: marker_lines(project), 30, "the first job to run")
    first.send_signal(signal.SIGTERM)
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    done_before = len(marker_lines(project))
    assert done_before < 6, "the first worker should not have run everything"

    second = corral(["worker", "jobs:app", "--burst"], env, project)
    assert second.returncode == 0, second.stderr
    assert f"{6 - done_before} completed" in second.stderr
    assert sorted(marker_lines(project)) == [str(n) for n in range(6)]


def test_worker_processes_use_the_same_server(project: Path, home: ServerHome) -> None:
    env = user_env(project, home)
    produced = run(["-c", PRODUCE, "8"], env, project)
    assert produced.returncode == 0, produced.stderr
    pool = corral(["worker", "jobs:app", "--processes", "2", "--burst"], env, project)
    assert pool.returncode == 0, pool.stderr
    assert sorted(marker_lines(project), key=int) == [str(n) for n in range(8)]


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


async def test_app_close_leaves_the_shared_server_running(
    home: ServerHome, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv(devserver.ENV_HOME, str(home.path))
    caplog.set_level(logging.WARNING, logger="corral.devserver")
    app = App()

    @app.job
    async def double(x: int) -> int:
        return 2 * x

    async with app:
        assert app.redis_url == home.url
        handle = await double.enqueue(21)
    assert devserver.is_running(home), "other processes may be using it"
    async with App() as other:
        assert (await other.get_job("default", handle.id)).state == "waiting"
    notices = [r.getMessage() for r in caplog.records if r.name == "corral.devserver"]
    assert len(notices) == 1, "one notice per process, however many Apps"
    assert home.url in notices[0] and str(home.data) in notices[0]
    assert "corral server stop" in notices[0] and "CORRAL_EMBEDDED=0" in notices[0]


def test_a_killed_keeper_takes_the_server_down_and_a_new_one_starts(home: ServerHome) -> None:
    state, _ = devserver.ensure_running(home)
    os.kill(state.keeper_pid, signal.SIGKILL)
    wait_for(lambda: not _alive(state.server_pid), 10, "the server to follow its keeper")
    assert not devserver.keeper_alive(home)
    again, started = devserver.ensure_running(home)
    assert started and again.keeper_pid != state.keeper_pid
    assert devserver.read_state(home) == again


async def test_refused_embedded_server_fails_at_connect(
    home: ServerHome, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(devserver.ENV_HOME, str(home.path))
    expected = "CORRAL_REDIS_URL is not set and the embedded server is refused (CORRAL_EMBEDDED=0)"
    for app in (App(embedded=False), App.from_env(embedded=False)):
        with pytest.raises(ConfigError) as err:
            await app.connect()
        assert expected in str(err.value)
    monkeypatch.setenv("CORRAL_EMBEDDED", "0")
    with pytest.raises(ConfigError, match=r"refused \(CORRAL_EMBEDDED=0\)"):
        await App.from_env().connect()
    assert not home.path.exists(), "nothing was started"


def test_refused_embedded_server_worker_exits_2_with_one_line(
    project: Path, home: ServerHome
) -> None:
    env = user_env(project, home, CORRAL_EMBEDDED="0")
    proc = corral(["worker", "jobs:app"], env, project)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "CORRAL_REDIS_URL is not set and the embedded server is refused" in lines[0]
    assert not home.path.exists()
    bad = corral(["worker", "jobs:app"], user_env(project, home, CORRAL_EMBEDDED="maybe"), project)
    assert bad.returncode == 2 and "CORRAL_EMBEDDED" in bad.stderr


def test_server_commands_json(project: Path, home: ServerHome) -> None:
    env = user_env(project, home)
    started = corral(["server", "start", "--idle", "10m", "--json"], env, project)
    assert started.returncode == 0, started.stderr
    first = json.loads(started.stdout)
    assert first["started"] is True and first["running"] is True
    assert first["idle_seconds"] == 600

    produced = run(["-c", PRODUCE, "2"], env, project)
    assert produced.returncode == 0, produced.stderr
    status = corral(["server", "status", "--json"], env, project)
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["running"] is True
    assert info["url"] == home.url == first["url"]
    assert info["keeper_pid"] == first["keeper_pid"] and _alive(info["server_pid"])
    assert info["data_dir"] == str(home.data)
    assert info["keys"] > 0 and info["memory_bytes"] > 0
    assert info["clients"] == 0 and info["uptime_seconds"] >= 0

    url = corral(["server", "url"], env, project)
    assert url.returncode == 0 and url.stdout.strip() == home.url
    again = json.loads(corral(["server", "start", "--json"], env, project).stdout)
    assert again["started"] is False and again["keeper_pid"] == first["keeper_pid"]

    stopped = corral(["server", "stop", "--json"], env, project)
    assert stopped.returncode == 0 and json.loads(stopped.stdout)["stopped"] is True
    assert not _alive(info["server_pid"])
    after = corral(["server", "status", "--json"], env, project)
    assert after.returncode == 1 and json.loads(after.stdout)["running"] is False
    assert corral(["server", "stop"], env, project).returncode == 1


def _serving_worker(project: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, "-m", "corral", "worker", "jobs:app", "--concurrency", "4"],
        env=env,
        cwd=project,
        stderr=subprocess.PIPE,
        text=True,
    )
    produced = run(["-c", PRODUCE_AND_WAIT, "2"], env, project)
    assert produced.returncode == 0, produced.stderr
    return worker


def test_a_killed_server_is_started_again_by_its_clients(project: Path, home: ServerHome) -> None:
    """The shared server dies under a running worker (SIGKILL, as the OOM killer would): the
    worker starts it again on its own, and jobs enqueued then still run (nothing else in the
    project asks for the server meanwhile)."""
    env = user_env(project, home)
    worker = _serving_worker(project, env)
    try:
        state = devserver.read_state(home)
        assert state is not None
        os.kill(state.server_pid, signal.SIGKILL)
        wait_for(lambda: not _alive(state.server_pid), 10, "the server to die")
        wait_for(
            lambda: (
                (again := devserver.read_state(home)) is not None
                and again.server_pid != state.server_pid
                and devserver.is_running(home)
            ),
            30,
            "the worker to start the server again",
        )
        produced = run(["-c", PRODUCE_AND_WAIT, "3"], env, project)
        assert produced.returncode == 0, produced.stderr
        assert produced.stdout.split() == ["0", "10", "20"]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "the shared server had stopped; started it again" in err
    assert "5 completed" in err


def test_a_server_stopped_on_purpose_is_not_started_again_behind_the_user(
    project: Path, home: ServerHome
) -> None:
    """After ``corral server stop`` a running worker waits for the server (it says so) rather
    than starting it again; the next process that asks for it starts it, and the worker
    carries on."""
    env = user_env(project, home)
    worker = _serving_worker(project, env)
    try:
        stop = corral(["server", "stop"], env, project)
        assert stop.returncode == 0, stop.stderr
        time.sleep(3.0)  # the worker has failed to reach it a few times by now
        assert not devserver.is_running(home)
        produced = run(["-c", PRODUCE_AND_WAIT, "3"], env, project)  # starts it
        assert produced.returncode == 0, produced.stderr
        assert produced.stdout.split() == ["0", "10", "20"]
    finally:
        worker.send_signal(signal.SIGTERM)
        _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err
    assert "started it again" not in err
    assert "5 completed" in err


def test_a_server_that_cannot_start_exits_3_like_any_unavailable_server(
    project: Path, tmp_path: Path
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    env = user_env(project, ServerHome(blocker / "home"))
    for args in (["server", "start"], ["server", "url"], ["info"]):
        proc = corral(args, env, project)
        assert proc.returncode == 3, (args, proc.stderr)
        assert "cannot create the server's home" in proc.stderr
        assert "Traceback" not in proc.stderr
