"""Tracebacks as the person who wrote the handler wants to read them: without the frames of
Corral's worker (and the asyncio and thread plumbing it runs handlers in) above the handler.

The stored traceback keeps every frame (``--json`` shows it whole); this only shapes what
``jobs show`` prints. A traceback whose every frame is Corral's is shown as it is: then the
error is Corral's, and its frames are the story.
"""

from __future__ import annotations

import re
from pathlib import Path, PurePath

_FRAME = re.compile(r'^  File "(?P<path>[^"]+)", line \d+, in ')
_PLUMBING = re.compile(r"[/\\]python3\.\d+[/\\](asyncio[/\\]|concurrent[/\\]|threading\.py$)")
_OURS = Path(__file__).resolve().parents[1]  # the installed corral package


def is_corral_frame(path: str) -> bool:
    """A frame in Corral's own code, wherever it was installed on the worker's machine (the
    path's part after its last ``corral/`` names a module of this package), or in the
    standard library's asyncio, concurrent.futures or threading."""
    if _PLUMBING.search(path):
        return True
    parts = PurePath(path.replace("\\", "/")).parts
    if "corral" not in parts:
        return False
    last = len(parts) - 1 - parts[::-1].index("corral")
    inside = parts[last + 1 :]
    return bool(inside) and (_OURS.joinpath(*inside)).is_file()


def trim_corral_frames(text: str) -> tuple[str, int]:
    """``text`` without the leading Corral frames of each of its tracebacks (a chained
    exception has several), and how many frames were left out."""
    out: list[str] = []
    hidden = 0
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if not lines[i].startswith("Traceback (most recent call last):"):
            i += 1
            continue
        frames, i = _frames(lines, i + 1)
        keep = 0
        while keep < len(frames) - 1 and is_corral_frame(frames[keep][0]):
            keep += 1
        if keep and not all(is_corral_frame(path) for path, _ in frames):
            hidden += keep
            frames = frames[keep:]
        for _, body in frames:
            out.extend(body)
    return "\n".join(out), hidden


def _frames(lines: list[str], i: int) -> tuple[list[tuple[str, list[str]]], int]:
    """The frames from line ``i`` on (each its path and lines), and where they end."""
    frames: list[tuple[str, list[str]]] = []
    while i < len(lines):
        match = _FRAME.match(lines[i])
        if match:
            frames.append((match.group("path"), [lines[i]]))
        elif frames and lines[i].startswith("    "):  # the frame's source and carets
            frames[-1][1].append(lines[i])
        else:
            break
        i += 1
    return frames, i
