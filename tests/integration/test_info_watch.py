"""Issue 13: ``corral info --watch`` refreshes the queues in place every ``--interval`` seconds
until Ctrl-C, which exits 0. Run as a user does: a subprocess on a terminal (a pty), and in a
pipe; against a real server."""

from __future__ import annotations

import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corral import App
from corral.embedded import EmbeddedServer
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App
app = App.from_env()
"""


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def plain(raw: bytearray) -> str:
    return ANSI.sub(b"", bytes(raw)).decode(errors="replace")


def read_until(fd: int, wanted: bytes, seen: bytearray, timeout: float = 20.0) -> None:
    """Read the terminal into ``seen`` until ``wanted`` arrives in what is read now."""
    start = len(seen)
    deadline = time.monotonic() + timeout
    while wanted not in seen[start:]:
        assert time.monotonic() < deadline, f"{wanted!r} not in {bytes(seen)[-2000:]!r}"
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                seen += os.read(fd, 65536)
            except OSError:  # the child closed the terminal
                return


async def test_watch_refreshes_in_place_until_ctrl_c(app: App, cli: Cli) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    await app.queue("shop").create()
    main, child = pty.openpty()
    env = {**cli.env, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "corral", "info", "--watch", "--interval", "0.2"],
        env=env,
        cwd=cli.bare,
        stdin=child,
        stdout=child,
        stderr=child,
        start_new_session=True,  # a session of its own: our SIGINT reaches it alone
    )
    os.close(child)
    seen = bytearray()
    try:
        read_until(main, b"every 0.2s (Ctrl-C to stop)", seen)
        read_until(main, b"0 worker(s) alive", seen)
        for i in range(3):
            await sync_order.enqueue(f"acme:{i}")
        # the next refreshes show the new count, drawn over the old table (cursor moved up)
        deadline = time.monotonic() + 20
        while not re.search(r"shop +3 +0 +0 +0 +0", plain(seen)):
            assert time.monotonic() < deadline, plain(seen)[-2000:]
            read_until(main, b"worker(s) alive", seen, timeout=deadline - time.monotonic())
            read_until(main, b"\n", seen, timeout=deadline - time.monotonic())
        assert plain(seen).count("Ctrl-C to stop") >= 3, plain(seen)[-2000:]
        assert b"\x1b[1A" in seen or b"\x1b[2K" in seen  # redrawn in place, not appended
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(main)


async def test_watch_in_a_pipe_prints_the_last_view_and_ctrl_c_exits_0(app: App, cli: Cli) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    await app.queue("shop").create()
    proc = cli.popen("info", "--watch", "--interval", "0.2")
    time.sleep(1.5)
    await sync_order.enqueue("acme:1")
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "every 0.2s (Ctrl-C to stop)" in out and out.endswith("\n")
    (row,) = [line for line in out.splitlines() if line.startswith("shop")]
    assert row.split()[:2] == ["shop", "1"]  # the last refresh, after the enqueue

    refused = cli.run("info", "--watch", "--json")
    assert refused.returncode == 2 and "use one of them" in refused.stderr
    cli("queue", "ls", "--watch", "--interval", "0", code=2)  # below the minimum
