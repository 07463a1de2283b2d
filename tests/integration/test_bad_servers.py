"""A URL that is wrong fails at once, in one line, as a Corral error with a hint; a server that
is down is retried, then reported with its own exit code (issue 11, item 8)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from corral import App, ConfigError, ConnectionLost
from corral.embedded import EmbeddedServer, free_port


@pytest.fixture
def http_port() -> Iterator[int]:
    """A port that answers HTTP, not Redis."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    stop = threading.Event()

    def serve() -> None:
        sock.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield sock.getsockname()[1]
    stop.set()
    thread.join()
    sock.close()


def corral(*args: str, timeout: float = 60) -> tuple[subprocess.CompletedProcess[str], float]:
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_REDIS_URL"}
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[2],
    )
    return proc, time.monotonic() - began


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return lines[0]


def test_tls_url_to_a_plain_server_fails_fast_with_a_hint(server: EmbeddedServer) -> None:
    url = server.url.replace("redis://", "rediss://")
    proc, took = corral("info", "--url", url)
    assert proc.returncode == 2
    assert "is it a TLS port?" in one_line(proc)
    assert took < 15  # the 5 s handshake timeout, once: not ~34 s of retries


def test_database_out_of_range(server: EmbeddedServer) -> None:
    url = server.url.rsplit("/", 1)[0] + "/99"
    proc, _ = corral("queue", "ls", "--url", url)
    assert proc.returncode == 2
    assert "has no database 99" in one_line(proc)


def test_http_port(http_port: int) -> None:
    proc, _ = corral("info", "--url", f"redis://127.0.0.1:{http_port}/0")
    assert proc.returncode == 2
    assert "does not answer as a Redis server" in one_line(proc)


@pytest.mark.parametrize("command", [("info",), ("worker", "tests.jobs.tier_jobs:app")])
def test_unreachable_server_has_one_exit_code(command: tuple[str, ...]) -> None:
    proc, _ = corral(*command, "--url", f"redis://127.0.0.1:{free_port()}/0")
    assert proc.returncode == 3, proc.stderr
    assert "is unreachable" in proc.stderr
    assert "Traceback" not in proc.stderr


async def test_the_python_api_raises_corral_errors(server: EmbeddedServer, http_port: int) -> None:
    for url in (server.url.rsplit("/", 1)[0] + "/99", f"redis://127.0.0.1:{http_port}/0"):
        app = App.from_url(url)
        with pytest.raises(ConfigError):
            await app.connect()
        await app.close()
    app = App.from_url(f"redis://127.0.0.1:{free_port()}/0", connect_retries=1)
    with pytest.raises(ConnectionLost):
        await app.connect()
    await app.close()
