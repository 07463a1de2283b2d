"""The `corral` command, run as a subprocess the way users run it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral import App
from corral.embedded import EmbeddedServer

APP_MODULE = """
import os, time
from corral import App
app = App.from_env()

@app.job(queue="cli")
def slow(seconds: float, marker: str = "") -> str:
    time.sleep(seconds)
    if marker:
        with open(marker, "a") as fh:
            fh.write(f"{os.getpid()}\\n")
    return "done"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "shopjobs.py").write_text(APP_MODULE)
    return tmp_path


def run_cli(
    args: list[str], env: dict[str, str], cwd: Path, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def cli_env(server: EmbeddedServer, prefix: str) -> dict[str, str]:
    return {**os.environ, "CORRAL_REDIS_URL": server.url, "CORRAL_PREFIX": prefix}


def user_app(server: EmbeddedServer, prefix: str, project: Path) -> App:
    sys.path.insert(0, str(project))
    try:
        import importlib

        module = importlib.import_module("shopjobs")
        module = importlib.reload(module)
    finally:
        sys.path.remove(str(project))
    app: App = module.app
    return app.configure(app.settings.replace(redis_url=server.url, prefix=prefix))


async def test_info_json_lists_counts(server: EmbeddedServer, prefix: str, project: Path) -> None:
    app = user_app(server, prefix, project)
    async with app:
        for _ in range(3):
            await app.registry["slow"].enqueue(0.0)
    proc = run_cli(["info", "--json"], cli_env(server, prefix), project)
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert rows == [
        {
            "queue": "cli",
            "waiting": 3,
            "delayed": 0,
            "active": 0,
            "completed": 0,
            "dead": 0,
            "paused": False,
            "completed_trimmed": 0,
            "dead_trimmed": 0,
        }
    ]
    table = run_cli(["info"], cli_env(server, prefix), project)
    assert table.returncode == 0 and "cli" in table.stdout and "waiting" in table.stdout


@pytest.mark.parametrize(
    ("args", "env_extra", "fragment"),
    [
        (["worker", "nomodule"], {}, "MODULE:APP"),
        (["worker", "does_not_exist:app"], {}, "cannot import"),
        (["worker", "shopjobs:slow"], {}, "is not a corral.App but a SyncJobFunction"),
        (
            ["worker", "shopjobs:ap"],
            {},
            "module 'shopjobs' has no attribute 'ap' (its App objects: app)",
        ),
        (["worker", "shopjobs:app"], {"CORRAL_REDIS_URL": "http://nope"}, "CORRAL_REDIS_URL"),
        (["info"], {"CORRAL_REDIS_URL": "", "CORRAL_EMBEDDED": "0"}, "embedded server is refused"),
        (["info"], {"CORRAL_EMBEDDED": "maybe"}, "CORRAL_EMBEDDED"),
        (["info"], {"CORRAL_LEASE_MS": "10"}, "must be at least 200 ms, got 10 ms"),
    ],
)
def test_usage_errors_exit_2_with_a_message(
    project: Path, args: list[str], env_extra: dict[str, str], fragment: str
) -> None:
    env = {**os.environ, **env_extra}
    proc = run_cli(args, env, project)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert fragment in proc.stderr


BROKEN_MODULES = {  # module: (its source, where it raises, what)
    "missing_dep": ("import os\n\nimport requestz\n", "missing_dep.py, line 3", "No module"),
    "raising": ("app = None\nrate = 1 / 0\n", "raising.py, line 2", "ZeroDivisionError"),
    "bad_syntax": ("from corral import App\napp = App(\n", "bad_syntax.py, line 2", "SyntaxError"),
    # raised in a module the user's module imports: the innermost of the user's frames
    "raising_deeper": ("import helper\napp = helper.make()\n", "helper.py, line 4", "KeyError"),
}


@pytest.mark.parametrize("module", sorted(BROKEN_MODULES))
def test_an_error_in_the_users_module_shows_its_file_and_line(project: Path, module: str) -> None:
    """Issue 13.8: what the user's module raised, where, in one or two lines: no traceback
    through importlib and Corral."""
    source, where, error = BROKEN_MODULES[module]
    (project / f"{module}.py").write_text(source)
    (project / "helper.py").write_text("import os\n\ndef make():\n    return os.environ['SHOP']\n")
    env = {k: v for k, v in os.environ.items() if k != "SHOP"}
    proc = run_cli(["worker", f"{module}:app"], env, project)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) <= 2, proc.stderr
    assert f"cannot import {module!r} ({where})" in lines[0], proc.stderr
    assert error in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr and "importlib" not in proc.stderr


def test_a_module_without_an_app_says_so(project: Path) -> None:
    (project / "plain.py").write_text("x = 1\n")
    proc = run_cli(["worker", "plain:app"], dict(os.environ), project)
    assert proc.returncode == 2
    assert "module 'plain' has no attribute 'app' (it defines no corral.App)" in proc.stderr


async def test_sigterm_lets_the_running_job_finish(
    server: EmbeddedServer, prefix: str, project: Path
) -> None:
    app = user_app(server, prefix, project)
    marker = project / "ran.txt"
    async with app:
        handle = await app.registry["slow"].enqueue(1.5, str(marker))
        worker = subprocess.Popen(
            [sys.executable, "-m", "corral", "worker", "shopjobs:app", "--grace", "10"],
            env=cli_env(server, prefix),
            cwd=project,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 20
            while (await handle.info()).state != "active":
                assert time.monotonic() < deadline, "job never started"
                time.sleep(0.05)
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
        finally:
            if worker.poll() is None:
                worker.kill()
        info = await handle.info()
        assert info.state == "completed" and info.result == "done"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
    return sorted(int(p) for p in out.stdout.split())


async def test_processes_pool_restarts_a_killed_child(
    server: EmbeddedServer, prefix: str, project: Path
) -> None:
    app = user_app(server, prefix, project)
    marker = project / "ran.txt"
    parent = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "corral",
            "worker",
            "shopjobs:app",
            "--processes",
            "2",
            "--concurrency",
            "4",
        ],
        env=cli_env(server, prefix),
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 20
        while len(_children(parent.pid)) < 2:
            assert time.monotonic() < deadline, "children did not start"
            time.sleep(0.1)
        first = _children(parent.pid)
        os.kill(first[0], signal.SIGKILL)
        while True:
            now = _children(parent.pid)
            if len(now) == 2 and first[0] not in now:
                break
            assert time.monotonic() < deadline + 10, "killed child was not replaced"
            time.sleep(0.1)
        async with app:
            handles = [await app.registry["slow"].enqueue(0.01, str(marker)) for _ in range(20)]
            results = [await h.result(timeout=30) for h in handles]
        assert results == ["done"] * 20
        pids = set(marker.read_text().split())
        assert pids <= {str(p) for p in now}
    finally:
        parent.send_signal(signal.SIGTERM)
        try:
            code = parent.wait(30)
        except subprocess.TimeoutExpired:
            parent.kill()
            raise
    assert code == 0
    assert _children(parent.pid) == []
