"""JSON merge patch (RFC 7386): the edit ``corral dlq replay --patch`` applies to payloads.

A merge patch is a JSON document shaped like the target: members it names replace the
target's, ``null`` deletes a member, nested objects merge recursively, anything that is not an
object (a list, a string) replaces the target whole. Pure data, no I/O.
"""

from __future__ import annotations

from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """``target`` with ``patch`` applied, as RFC 7386 section 2 defines ``MergePatch``; neither
    argument is modified. ``merge_patch({"a": 1, "b": 2}, {"b": None, "c": 3})`` is
    ``{"a": 1, "c": 3}``."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for name, value in patch.items():
        if value is None:
            result.pop(name, None)
        else:
            result[name] = merge_patch(result.get(name), value)
    return result
