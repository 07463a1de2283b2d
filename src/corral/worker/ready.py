"""The ready file of ``corral worker --ready-file PATH``: a signal for scripts and probes that
the worker is connected and claiming.

One process writes the worker id to PATH once it is ready and removes PATH when it exits. A
pool (``--processes N``) gives each child ``PATH.<slot>`` and writes PATH itself, with every
child's id, once all of them are ready; it removes them all when it exits.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path


def write_ready_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a probe never reads half of it)."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(text)
    os.replace(partial, path)


def slot_file(path: Path, slot: int) -> Path:
    """The ready file of one child of a pool."""
    return path.with_name(f"{path.name}.{slot}")


def pool_ready(path: Path, slots: int) -> str | None:
    """Every child's worker id, one per line, once all ``slots`` children are ready; else None."""
    ids: list[str] = []
    for slot in range(slots):
        try:
            ids.append(slot_file(path, slot).read_text().strip())
        except FileNotFoundError:
            return None
    return "".join(f"{worker_id}\n" for worker_id in ids)


def remove(paths: Sequence[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)
