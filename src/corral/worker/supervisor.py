"""``corral worker --processes N``: a parent that keeps N worker processes alive.

Each child is a plain ``corral worker`` with ``--processes 1``. A child that dies is replaced
(with a short back-off if children keep dying at start-up); SIGTERM/SIGINT to the parent is
passed on to the children, which shut down gracefully, and the parent waits for them.
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

from corral._guard import die_with_parent

log = logging.getLogger(__name__)

RESTART_BACKOFF_S = (0.1, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Supervisor:
    """Runs ``command`` ``count`` times in parallel until told to stop."""

    command: Sequence[str]
    count: int
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    stop_timeout: float = 60.0
    burst: bool = False
    restarts: int = 0
    _children: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    _stopping: bool = False

    def _spawn(self, slot: int) -> None:
        env = {**self.env, "CORRAL_WORKER_SLOT": str(slot)}
        # A process group of its own: a Ctrl-C at the terminal reaches only this parent, which
        # passes one SIGTERM on (a child that also got the terminal's SIGINT would take the
        # two as "force" and skip its grace). It still stops if this parent is killed.
        self._children[slot] = subprocess.Popen(
            list(self.command),
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

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.count):
            self._spawn(slot)
        failures = 0
        finished: set[int] = set()
        while not self._stopping and len(finished) < self.count:
            time.sleep(0.2)
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
