"""Guard process for the embedded server: ``python -m corral._guard PARENT DIR OWNS -- CMD...``.

Runs CMD (the server) and ends it, removing DIR if OWNS is 1, when it receives SIGTERM or
SIGINT, when its parent PID is gone (polled every 0.1 s), or when the server exits. The server
itself gets PR_SET_PDEATHSIG against the guard (whose main thread is the one that starts it).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import subprocess
import sys
import time

_PR_SET_PDEATHSIG = 1


def die_with_parent(sig: int) -> None:
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, sig)


def main(argv: list[str]) -> int:
    parent, directory, owns = int(argv[0]), argv[1], argv[2] == "1"
    cmd = argv[argv.index("--") + 1 :]
    # No PR_SET_PDEATHSIG for the guard itself: Linux sends it when the *thread* that started
    # the guard ends (e.g. a thread-pool worker), not the process. Polling the parent pid
    # (reparenting happens only when the whole process is gone) is what we rely on.
    stop = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server = subprocess.Popen(cmd, preexec_fn=lambda: die_with_parent(signal.SIGKILL))
    try:
        while not stop and server.poll() is None:
            if os.getppid() != parent:
                break
            time.sleep(0.1)
    finally:
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(5)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        if owns:
            shutil.rmtree(directory, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
