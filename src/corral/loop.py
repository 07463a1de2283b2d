"""The event loop Corral's own entry points run on: uvloop where it is installed, else asyncio.

uvloop (libuv, the loop Node runs on) runs the same code with less overhead per callback and
per socket call; the worker CLI, the operator CLI, the demo, the sync API's private loop and
the benchmarks use it. Library code never depends on it: inside an application's own loop,
whatever that is, everything works the same. ``CORRAL_EVENT_LOOP`` chooses: ``auto`` (the
default: uvloop if installed), ``uvloop`` (required), or ``asyncio``.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from corral.errors import ConfigError

ENV_EVENT_LOOP = "CORRAL_EVENT_LOOP"
T = TypeVar("T")


def loop_factory(choice: str | None = None) -> Callable[[], asyncio.AbstractEventLoop]:
    """How to make a new event loop, by ``choice`` or else ``$CORRAL_EVENT_LOOP``."""
    wanted = choice or os.environ.get(ENV_EVENT_LOOP) or "auto"
    if wanted not in ("auto", "uvloop", "asyncio"):
        raise ConfigError(f"{ENV_EVENT_LOOP} must be auto, uvloop or asyncio, got {wanted!r}")
    if wanted == "asyncio":
        return asyncio.new_event_loop
    try:
        import uvloop
    except ImportError:
        if wanted == "uvloop":
            raise ConfigError(f"{ENV_EVENT_LOOP}=uvloop, but uvloop is not installed") from None
        return asyncio.new_event_loop
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"


def run(main: Coroutine[Any, Any, T], *, choice: str | None = None) -> T:
    """``asyncio.run(main)`` on the chosen loop."""
    with asyncio.Runner(loop_factory=loop_factory(choice)) as runner:
        return runner.run(main)
