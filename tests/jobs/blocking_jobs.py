"""Thread-mode handlers that never return in time (a hung HTTP call, say), for the shutdown
tests. A ``corral worker`` subprocess serves ``app`` with CORRAL_REDIS_URL and CORRAL_PREFIX
from its environment; tests in this process point it at their server with ``app.configure``.
"""

from __future__ import annotations

import time

from corral import App, Settings, current_job

app = App(Settings.from_env(), name="corral-test-blocking")


@app.job(queue="blocking")
def block(seconds: float) -> str:
    """Logs "blocking" once it runs in its thread, then sleeps (uninterruptibly)."""
    current_job().log("blocking")
    time.sleep(seconds)
    return "woke"
