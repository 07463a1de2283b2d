"""Job ids chosen by the client: sortable by time, 80 random bits, safe to re-send.

Because the id is fixed before the first attempt to store the job, an enqueue retried after a
lost connection finds its own job instead of storing a duplicate.
"""

from __future__ import annotations

import base64
import os
import time


def new_job_id() -> str:
    """26 characters of base32hex (sorts like the bytes): 48 bits of milliseconds since the
    epoch, then 80 random bits."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return base64.b32hexencode(raw)[:26].decode().lower()
