"""Job ids chosen by the client: sortable by time, 80 random bits, safe to re-send.

Because the id is fixed before the first attempt to store the job, an enqueue retried after a
lost connection finds its own job instead of storing a duplicate.
"""

from __future__ import annotations

import binascii
import os
import time

# Base64 in C, then its alphabet swapped for one that sorts like the bits it encodes (and
# holds only characters a job id may have, none of which is '-': an id never looks like a
# command-line option). The stdlib's base32 is pure Python and cost twice as much.
_BASE64 = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
_SORTABLE = b"0123456789@ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz"
_TO_SORTABLE = bytes.maketrans(_BASE64, _SORTABLE)


def new_job_id() -> str:
    """22 characters: 48 bits of milliseconds since the epoch, then 80 random bits."""
    raw = (time.time_ns() // 1_000_000).to_bytes(6, "big") + os.urandom(10)
    return binascii.b2a_base64(raw, newline=False)[:22].translate(_TO_SORTABLE).decode()
