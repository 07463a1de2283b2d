"""A process-mode handler whose module hangs at import (a network call at import time that
never answers). Never import it in a test process: only children do, and the worker gives up
on them after its start-up limit.
"""

from __future__ import annotations

import time

from corral import App

time.sleep(3600)

app = App(name="corral-test-hung-import")


@app.job(queue="hung-import", mode="process")
def never() -> None:
    """Never runs: its module does not finish importing."""
