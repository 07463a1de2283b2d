"""The keeper of the shared server: ``python -m corral._keeper HOME IDLE_SECONDS BINARY``.

Started detached by :func:`corral.devserver.ensure_running`. It forks: the first process exits
0 once the forked keeper has the server answering (1 if it could not), so its starter knows the
outcome and the keeper is nobody's child. The keeper then runs the server as its own child,
writes ``server.json``, and every ~2 s asks the server how many clients it has. It stops the
server with SHUTDOWN (the append-only file synced) when only the keeper has been connected for
the idle time, or on SIGTERM/SIGINT/SIGHUP; if the server dies it cleans up and exits too.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import redis

from corral._guard import die_with_parent
from corral.devserver import (
    KEEPER_NAME,
    READY_TIMEOUT,
    STOP_TIMEOUT,
    ServerHome,
    ServerState,
    admin_client,
    clear_state,
    describe_idle,
    is_running,
    last_handout,
    server_command,
    write_state,
)

log = logging.getLogger("corral.keeper")

CHECK_EVERY = 2.0  # seconds between two looks at the server's clients


class Keeper:
    def __init__(self, home: ServerHome, idle: float, binary: str) -> None:
        self.home = home
        self.idle = idle
        self.binary = binary
        self.stopping = False
        self.server: subprocess.Popen[bytes] | None = None
        self.client: redis.Redis | None = None

    def on_signal(self, signum: int, frame: object) -> None:
        self.stopping = True

    def run(self, ready: Callable[[], None]) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self.on_signal)
        with open(self.home.keeper_lock, "a+") as lock:
            if not _lock_within(lock, 2.0):
                log.error("another keeper holds %s; exiting", self.home.keeper_lock)
                return 1
            try:
                if not self.start():
                    return 1
                ready()
                self.watch()
            finally:
                self.shutdown()
                clear_state(self.home, os.getpid())
        return 0

    def start(self) -> bool:
        # SIGTERM, not SIGKILL, when the keeper dies: the server then syncs its file and exits.
        self.server = subprocess.Popen(
            server_command(self.binary, self.home),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while not is_running(self.home):
            if self.server.poll() is not None or self.stopping or time.monotonic() > deadline:
                log.error("server did not start (exit code %s)", self.server.poll())
                return False
            time.sleep(0.02)
        self.client = admin_client(self.home, KEEPER_NAME)
        write_state(
            self.home,
            ServerState(
                keeper_pid=os.getpid(),
                server_pid=self.server.pid,
                url=self.home.url,
                binary=self.binary,
                started_at=time.time(),
                idle_seconds=self.idle,
                home=str(self.home.path),
                data_dir=str(self.home.data),
            ),
        )
        log.info(
            "server %d ready at %s, %s", self.server.pid, self.home.url, describe_idle(self.idle)
        )
        return True

    def watch(self) -> None:
        """Until a signal, the server's death, or the idle time with no client but us."""
        assert self.server is not None
        every = min(CHECK_EVERY, max(0.1, self.idle / 4)) if self.idle > 0 else CHECK_EVERY
        last_busy = time.time()
        next_check = 0.0
        while not self.stopping:
            if self.server.poll() is not None:
                log.error("server exited on its own (code %s)", self.server.returncode)
                return
            now = time.monotonic()
            if now >= next_check:
                next_check = now + every
                if self.clients() > 1:
                    last_busy = time.time()
                if self.idle > 0 and self.idle_for(last_busy) >= self.idle and self.idle_stop():
                    return
            time.sleep(0.1)
        log.info("stopping on a signal")

    def clients(self) -> int:
        """Connected clients, the keeper included; a failed look counts as busy."""
        assert self.client is not None
        try:
            return int(self.client.info("clients")["connected_clients"])
        except redis.RedisError as exc:
            log.warning("could not read the server's clients: %s", exc)
            return 2

    def idle_for(self, last_busy: float) -> float:
        return time.time() - max(last_busy, last_handout(self.home))

    def idle_stop(self) -> bool:
        """Stop if still idle, holding the start lock so no process finds the server while it
        goes away; False (try later) if someone holds the lock or connected meanwhile."""
        with open(self.home.lock, "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                return False
            if self.clients() > 1 or self.idle_for(0.0) < self.idle:
                return False
            log.info("no client for %gs: stopping", self.idle)
            self.shutdown()
            clear_state(self.home, os.getpid())
            return True

    def shutdown(self) -> None:
        """SHUTDOWN (syncs the append-only file), else SIGTERM, else SIGKILL; then reap it."""
        server, self.server = self.server, None
        client, self.client = self.client, None
        if server is None:
            return
        if server.poll() is None:
            try:
                if client is None:
                    raise redis.ConnectionError("no connection yet")
                client.shutdown()
            except redis.RedisError as exc:
                log.warning("SHUTDOWN failed (%s): sending SIGTERM", exc)
                server.terminate()
            try:
                server.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                log.error("server %d did not stop: killing it", server.pid)
                server.kill()
                server.wait()
        if client is not None:
            client.close()
        log.info("server %d stopped (exit code %s)", server.pid, server.returncode)


def _lock_within(lock: IO[str], seconds: float) -> bool:
    """flock LOCK_EX within ``seconds``: a status probe may hold a shared lock for a moment."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except OSError:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.02)


def main(argv: list[str]) -> int:
    home, idle, binary = ServerHome(Path(argv[0])), float(argv[1]), argv[2]
    ready_r, ready_w = os.pipe()
    if os.fork() > 0:
        os.close(ready_w)
        # b"1" once the server answers; EOF if the keeper died first
        return 0 if os.read(ready_r, 1) == b"1" else 1
    os.close(ready_r)
    os.setsid()
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s keeper[%(process)d] %(levelname)s %(message)s",
    )

    def ready() -> None:
        os.write(ready_w, b"1")
        os.close(ready_w)

    try:
        return Keeper(home, idle, binary).run(ready)
    except Exception:  # logged to keeper.log, where the starter looks when we fail
        log.exception("keeper failed")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
