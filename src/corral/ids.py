"""Job ids chosen by the client: sortable by time, 80 random bits, safe to re-send.

Because the id is fixed before the first attempt to store the job, an enqueue retried after a
lost connection finds its own job instead of storing a duplicate.
"""

from __future__ import annotations

import os
import time

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"  # Crockford base32, lower case


def _b32(value: int, width: int) -> str:
    out = []
    for _ in range(width):
        out.append(_ALPHABET[value & 31])
        value >>= 5
    return "".join(reversed(out))


def new_job_id() -> str:
    """26 characters: 10 of milliseconds since the epoch, 16 of randomness."""
    ms = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    return _b32(ms, 10) + _b32(rand, 16)
