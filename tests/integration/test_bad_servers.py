"""A URL that is wrong fails at once, in one line, as a Corral error with a hint; a server that
is down is retried, then reported with its own exit code (issue 11, item 8)."""

from __future__ import annotations

import contextlib
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
    assert "answers plain Redis: use redis://" in one_line(proc)
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


@pytest.fixture
def flaky_proxy(server: EmbeddedServer) -> Iterator[tuple[int, list[int]]]:
    """A port in front of the test server that closes its first two connections at once (a
    server restarting, a load balancer without a backend yet), then forwards to the server.
    Yields the port and the list of connections accepted so far."""
    upstream_port = int(server.url.rsplit(":", 1)[1].split("/")[0])
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[int] = []

    def pipe(src: socket.socket, dst: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := src.recv(65536):
                dst.sendall(data)
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            accepted.append(1)
            if len(accepted) <= 2:
                conn.close()
                continue
            upstream = socket.create_connection(("127.0.0.1", upstream_port))
            for a, b in ((conn, upstream), (upstream, conn)):
                threading.Thread(target=pipe, args=(a, b), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    yield listener.getsockname()[1], accepted
    listener.close()


async def test_a_connection_closed_at_once_is_retried_when_the_port_is_not_tls(
    flaky_proxy: tuple[int, list[int]],
) -> None:
    """A plain URL whose first connections are closed at once is not called a TLS port: the
    port does not speak TLS, so it is retried, and it connects."""
    port, accepted = flaky_proxy
    app = App.from_url(f"redis://127.0.0.1:{port}/0", connect_retries=5)
    try:
        await app.connect()
        await (await app.engine()).ping()
    finally:
        await app.close()
    assert len(accepted) >= 3  # two closed, then the one that worked (and the sniffs)


async def test_a_tls_handshake_that_times_out_on_a_silent_port_is_unreachable() -> None:
    """rediss:// to a port that accepts and says nothing (a TLS server too busy to answer):
    not a wrong URL, since it does not answer plain Redis either, but unreachable."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def hold() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):
                held.append(listener.accept()[0])

    thread = threading.Thread(target=hold, daemon=True)
    thread.start()
    app = App.from_url(f"rediss://127.0.0.1:{listener.getsockname()[1]}/0", connect_retries=0)
    try:
        with pytest.raises(ConnectionLost, match="unreachable"):
            await app.connect()
    finally:
        await app.close()
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
