"""``corral worker --processes N``: a parent that keeps N worker processes alive.

Each child is a plain ``corral worker`` with ``--processes 1``. A child that dies is replaced
(with a short back-off if children keep dying at start-up); SIGTERM/SIGINT to the parent is
passed on to the children, which shut down gracefully, and the parent waits for them. With a
ready file, each child writes its own and the parent writes the pool's once all are ready
(``ready.py``).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corral._guard import die_with_parent
from corral.worker.ready import pool_ready, remove, slot_file, write_ready_file

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)
STOP_MARGIN_S = 30.0
"""How long past its grace period a child may take to stop (hand jobs back, run shutdown
hooks, each bounded by their own timeouts) before it is killed."""


@dataclass
class Supervisor:
    """Runs ``command`` ``count`` times in parallel until told to stop."""

    command: Sequence[str]
    count: int
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    stop_timeout: float = 60.0
    burst: bool = False
    ready_file: Path | None = None
    restarts: int = 0
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: bool = False

    def _spawn(self, slot: int) -> None:
        env = {**self.env, "CORRAL_WORKER_SLOT": str(slot)}
        command = list(self.command)
        if self.ready_file is not None:
            command += ["--ready-file", str(slot_file(self.ready_file, slot))]
        # A process group of its own: a Ctrl-C at the terminal reaches only this parent, which
        # passes one SIGTERM on (a child that also got the terminal's SIGINT would take the
        # two as "force" and skip its grace). It still stops if this parent is killed.
        self._children[slot] = subprocess.Popen(
            command,
            env=env,
            process_group=0,
            preexec_fn=lambda: die_with_parent(signal.SIGTERM),
        )
        log.info("started worker process %d (pid %d)", slot, self._children[slot].pid)

    def _on_signal(self, signum: int, frame: object) -> None:
        if self._stopping:  # second signal: stop now
            for child in self._children.values():
                if child.poll() is None:
                    child.send_signal(signal.SIGINT)
            return
        self._stopping = True
        for child in self._children.values():
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)

    def _ready_files(self) -> list[Path]:
        if self.ready_file is None:
            return []
        return [self.ready_file, *(slot_file(self.ready_file, s) for s in range(self.count))]

    def run(self) -> int:
        try:
            return self._run()
        finally:
            remove(self._ready_files())  # also those of children that were killed

    def _run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        remove(self._ready_files())  # left by a pool that was killed: not ready yet
        for slot in range(self.count):
            self._spawn(slot)
        failures = 0
        finished: set[int] = set()
        announced = self.ready_file is None
        while not self._stopping and len(finished) < self.count:
            time.sleep(0.2)
            if not announced and self.ready_file is not None:
                ids = pool_ready(self.ready_file, self.count)
                if ids is not None:
                    write_ready_file(self.ready_file, ids)
                    log.info("worker pool ready: %d processes", self.count)
                    announced = True
            for slot, child in list(self._children.items()):
                code = child.poll()
                if code is None or self._stopping or slot in finished:
                    continue
                if code == 0 and self.burst:  # --burst: the queues are empty, this one is done
                    finished.add(slot)
                    continue
                log.warning(
                    "worker process %d (pid %d) exited with %s; restarting", slot, child.pid, code
                )
                failures = failures + 1 if code != 0 else 0
                time.sleep(RESTART_BACKOFF_S[min(failures, len(RESTART_BACKOFF_S) - 1)])
                self.restarts += 1
                self._spawn(slot)
        deadline = time.monotonic() + self.stop_timeout
        for child in self._children.values():
            try:
                child.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        return 0


def worker_command(target: str, args: Sequence[str]) -> list[str]:
    return [sys.executable, "-m", "corral", "worker", target, *args, "--processes", "1"]
