"""The user's code named on the command line (``MODULE:ATTRIBUTE``): imported, checked, and
reported in the user's terms when it fails.

An exception raised while the user's module is imported is shown as the file and line in the
user's code that raised it (one line, plus that line of source), not as a traceback through
importlib and Corral: the person reading it needs to fix their module, not ours.
"""

from __future__ import annotations

import importlib
import linecache
import logging
import os
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from corral.app import App
from corral.errors import ConfigError

log = logging.getLogger(__name__)


def split_target(target: str, expected: str) -> tuple[str, str]:
    """``module.path:attribute`` -> its two halves; ``expected`` shows the form in errors."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected {expected}, got {target!r}")
    return module_name, attr


def import_user_module(module_name: str) -> ModuleType:
    """Import a module of the user's project (the current directory is importable)."""
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            # the module itself is missing, not something it imports
            raise ConfigError(
                f"cannot import {module_name!r}: no module named {exc.name!r} "
                f"(looked in {os.getcwd()} and the installed packages)"
            ) from None
        raise ConfigError(raised_while_importing(module_name, exc)) from None
    except Exception as exc:  # anything the module's own code raised
        log.debug("importing %s failed", module_name, exc_info=True)
        raise ConfigError(raised_while_importing(module_name, exc)) from None


def raised_while_importing(module_name: str, exc: BaseException) -> str:
    """``cannot import 'm' (m.py, line 3): NameError: ...`` and, on a second line, that line
    of the user's source."""
    where = _user_location(exc)
    said = exc.msg if isinstance(exc, SyntaxError) else str(exc)  # its str() repeats the place
    what = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
    if where is None:
        return f"cannot import {module_name!r}: {what}"
    path, line = where
    text = f"cannot import {module_name!r} ({_shown(path)}, line {line}): {what}"
    source = linecache.getline(path, line).strip()
    return f"{text}\n  {source}" if source else text


def _user_location(exc: BaseException) -> tuple[str, int] | None:
    """Where in the user's code ``exc`` was raised: the innermost frame in the current
    directory's tree, else the innermost frame outside importlib."""
    if isinstance(exc, SyntaxError) and exc.filename and exc.lineno:
        return exc.filename, exc.lineno
    ours = str(Path(__file__).resolve().parents[1]) + os.sep  # corral's own files
    frames = [
        (f.filename, f.lineno or 0)
        for f in traceback.extract_tb(exc.__traceback__)
        if not f.filename.startswith(("<", ours)) and "importlib" not in Path(f.filename).parts
    ]
    here = os.getcwd() + os.sep
    mine = [f for f in frames if f[0].startswith(here) and "site-packages" not in f[0]]
    chosen = mine or frames
    return chosen[-1] if chosen else None


def _shown(path: str) -> str:
    """A path relative to the current directory when it is inside it."""
    try:
        return str(Path(path).relative_to(os.getcwd()))
    except ValueError:
        return path


def _resolve(module: ModuleType, module_name: str, attr: str) -> Any:
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ConfigError(
                f"module {module_name!r} has no attribute {attr!r} ({_apps_in(module)})"
            )
        obj = getattr(obj, part)
    return obj


def _apps_in(module: ModuleType) -> str:
    names = sorted(name for name, value in vars(module).items() if isinstance(value, App))
    if not names:
        return "it defines no corral.App"
    return f"its App objects: {', '.join(names)}"


def load_app(target: str) -> App:
    """Import ``module:attribute`` and return the App it names."""
    module_name, attr = split_target(target, "MODULE:APP (e.g. myapp.jobs:app)")
    module = import_user_module(module_name)
    app = _resolve(module, module_name, attr)
    if not isinstance(app, App):
        raise ConfigError(
            f"{target!r} is not a corral.App but a {type(app).__name__} ({_apps_in(module)})"
        )
    return app


def load_callable(target: str, option: str) -> Callable[..., Any]:
    """Import ``module:function`` for ``option`` (e.g. ``--edit``) and return it."""
    module_name, attr = split_target(target, f"{option} MODULE:FUNCTION")
    fn = _resolve(import_user_module(module_name), module_name, attr)
    if not callable(fn):
        raise ConfigError(f"{option} {target!r} is not callable (a {type(fn).__name__})")
    return fn  # type: ignore[no-any-return]
