"""Where the worker's log records go, and in what shape (entry points configure logging; the
library only logs).

- ``rich``: for a person at a terminal (colours, aligned columns).
- ``plain``: one line per record, an ISO-8601 UTC time first, for files and log collectors
  that read lines (no wrapping at 80 columns, no ``[12/02/26 ...]`` dates).
- ``json``: one JSON object per line, the per-job fields (queue, job, job_id, group, attempt,
  duration_ms, outcome) as keys, for platforms that index logs.
- ``auto`` (the default): ``rich`` when stderr is a terminal, else ``plain``.

``--log-level`` applies to every logger, the handlers' own included (their INFO records show
by default); ``--verbose`` adds Corral's debug records only. The chatty libraries under a
worker (redis-py, asyncio, HTTP clients) stay at WARNING, so debugging does not drown in their
records.

A worker's formats print neither thread nor process names, so they are not gathered for each
record (``logging.logThreads`` and friends): a fifth of a job line's cost. A handler added to
a ``corral worker`` process that prints them shows ``None``; ``corral.run`` or a Worker of
your own, with your logging set up, keeps them.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime
from typing import Any

from corral.errors import ConfigError

ENV_LOG_FORMAT = "CORRAL_LOG_FORMAT"
ENV_LOG_LEVEL = "CORRAL_LOG_LEVEL"
FORMATS = ("auto", "rich", "plain", "json")
LEVELS = ("debug", "info", "warning", "error")
QUIET = ("redis", "asyncio", "httpx", "httpcore", "urllib3", "hpack", "aiosqlite")
"""Libraries whose INFO and DEBUG records say nothing a worker's operator needs."""


def _iso(record: logging.LogRecord) -> str:
    moment = datetime.fromtimestamp(record.created, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class PlainFormatter(logging.Formatter):
    """``2026-12-02T05:30:00.123Z INFO corral.worker.attempts completed recipes/... in 12ms``"""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{_iso(record)} {record.levelname} {record.name} {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    """One object per record: time, level, logger, message, the record's Corral fields, and
    the exception's text when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "corral", None)
        if isinstance(fields, dict):
            out.update(fields)
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def choose(fmt: str | None, level: str | None, verbose: bool) -> tuple[str, int, int]:
    """The format, the level of every logger and Corral's own, from the options, else the
    environment, else defaults."""
    fmt = (fmt or os.environ.get(ENV_LOG_FORMAT) or "auto").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "auto":
        fmt = "rich" if sys.stderr.isatty() else "plain"
    name = (level or os.environ.get(ENV_LOG_LEVEL) or "info").lower()
    if name not in LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LEVELS)}, got {name!r}")
    everyone = getattr(logging, name.upper())
    return fmt, everyone, logging.DEBUG if verbose else everyone


def setup(fmt: str | None = None, level: str | None = None, *, verbose: bool = False) -> None:
    """Configure the root logger for a ``corral`` command that runs for a while (a worker)."""
    chosen, root_level, corral_level = choose(fmt, level, verbose)
    handler: logging.Handler
    if chosen == "rich":
        from rich.logging import RichHandler

        from corral.cli._common import err_console

        handler = RichHandler(console=err_console, show_path=False, rich_tracebacks=True)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter() if chosen == "json" else PlainFormatter())
    # No format here prints threads or processes: not gathering them for every record keeps
    # a worker's line per job cheap (see the module's docstring)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(root_level)
    for name in QUIET:
        logging.getLogger(name).setLevel(max(root_level, logging.WARNING))
    logging.getLogger("corral").setLevel(corral_level)
