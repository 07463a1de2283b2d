"""Process-mode handlers in a module that takes 2 s to import (a heavy library, a model loaded
at import time), with a timeout of 1.5 s: they can only succeed if the timeout runs from the
moment the child calls the handler, not from the moment it started importing.

Import it lazily (``importlib.import_module``) so that only the tests that use it pay the 2 s.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta

from corral import App, Fixed, RetryPolicy

IMPORT_SECONDS = 2.0
time.sleep(IMPORT_SECONDS)

app = App(name="corral-test-slow-import")

ONE_ATTEMPT = RetryPolicy(attempts=1, backoff=Fixed(timedelta(0)))
TIMEOUT = timedelta(seconds=1.5)


@app.job(queue="slow-import", mode="process", retry=ONE_ATTEMPT, timeout=TIMEOUT)
def quick() -> int:
    """Returns at once, with the child's pid."""
    return os.getpid()


@app.job(queue="slow-import", mode="process", retry=ONE_ATTEMPT, timeout=TIMEOUT)
def stall(seconds: float) -> int:
    time.sleep(seconds)
    return os.getpid()
