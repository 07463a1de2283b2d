"""Job ids chosen by the client: sortable by time, 80 random bits, safe to re-send.

Because the id is fixed before the first attempt to store the job, an enqueue retried after a
lost connection finds its own job instead of storing a duplicate.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghijklmnopqrstuv"  # base32hex: sorts like the bits it encodes
_PAIRS = tuple(a + b for a in _ALPHABET for b in _ALPHABET)  # 10 bits -> 2 characters
_SHIFTS = tuple(range(120, -1, -10))


def new_job_id() -> str:
    """26 characters: 48 bits of milliseconds since the epoch, then 80 random bits (the same
    text as base32hex of those 16 bytes, written with a lookup table: the stdlib's encoder is
    pure Python and was half the cost of preparing a job)."""
    ms = time.time_ns() // 1_000_000
    n = ((ms << 80) | int.from_bytes(os.urandom(10), "big")) << 2
    return "".join([_PAIRS[(n >> s) & 1023] for s in _SHIFTS])
