"""Issue 13: a starting worker says when it is ready, in a documented log line and with
``--ready-file PATH`` (written once it is connected and claiming, removed at exit), for one
process and for a pool; worker ids are ``host:pid:suffix``. Real processes, a real server."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from corral import App
from corral.embedded import EmbeddedServer
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App
app = App.from_env()

@app.job(queue="shop")
async def sync_order(order: str) -> str:
    return order
"""
READY = re.compile(r"worker (\S+) ready: serving shop \(concurrency 4\)")


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = 30.0) -> str:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)
    return path.read_text()


def one_line(text: str) -> str:
    """Log lines as a terminal-less reader sees them, whatever wrapping a handler did."""
    return " ".join(text.split())


async def test_one_worker_writes_its_ready_file_and_removes_it(
    app: App, cli: Cli, tmp_path: Path
) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    ready = tmp_path / "run" / "worker.ready"
    ready.parent.mkdir()
    ready.write_text("stale: a killed worker's\n")
    args = ("worker", "shopapp:app", "-q", "shop", "-c", "4", "--ready-file", str(ready))
    proc = cli.popen(*args, cwd=cli.app_dir)
    try:
        # removed at start, so a stale file never says "ready" for this worker
        deadline = time.monotonic() + 30
        while ready.exists() and ready.read_text().startswith("stale"):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.01)
        worker_id = wait_for_file(ready, proc).strip()
        host, pid, suffix = worker_id.split(":")
        assert (host, int(pid)) == (socket.gethostname(), proc.pid)
        assert re.fullmatch(r"[0-9A-Za-z@_]{6}", suffix), suffix
        # ready means claiming: a job enqueued now runs
        handle = await sync_order.enqueue("acme:1")
        assert await handle.result(timeout=10) == "acme:1"
        assert (await handle.info()).worker == worker_id
        assert [w.id for w in await app.workers()] == [worker_id]
        assert [p.name for p in ready.parent.iterdir()] == ["worker.ready"]  # no temp file
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert not ready.exists()
    match = READY.search(one_line(err))
    assert match is not None and match.group(1) == worker_id, err


async def test_a_pool_is_ready_when_every_process_is(cli: Cli, tmp_path: Path) -> None:
    ready = tmp_path / "pool.ready"
    args = ("worker", "shopapp:app", "-q", "shop", "-c", "4", "-p", "2", "--ready-file", str(ready))
    proc = cli.popen(*args, cwd=cli.app_dir)
    try:
        ids = wait_for_file(ready, proc).split()
        assert len(ids) == 2
        children = sorted((tmp_path / f"pool.ready.{slot}").read_text().strip() for slot in (0, 1))
        assert sorted(ids) == children
        for worker_id in ids:
            assert worker_id.startswith(socket.gethostname() + ":")
        shown = {w["id"] for w in cli("workers", "--json")}
        assert shown == set(ids)
    finally:
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert sorted(p.name for p in tmp_path.glob("pool.ready*")) == []
    assert {m.group(1) for m in READY.finditer(one_line(err))} == set(ids)
    assert "worker pool ready: 2 processes" in one_line(err)
