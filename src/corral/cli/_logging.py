"""Where the worker's log records go, and in what shape (entry points configure logging; the
library only logs).

- ``rich``: for a person at a terminal (colours, aligned columns).
- ``plain``: one line per record, an ISO-8601 UTC time first, for files and log collectors
  that read lines (no wrapping at 80 columns, no ``[12/02/26 ...]`` dates).
- ``json``: one JSON object per line, the per-job fields (queue, job, job_id, group, attempt,
  duration_ms, outcome) as keys, for platforms that index logs.
- ``auto`` (the default): ``rich`` when stderr is a terminal, else ``plain``.

Only Corral's own loggers follow ``--verbose``/``--log-level``; other libraries' (redis-py,
asyncio) stay at WARNING, so debugging Corral does not drown in their records.
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


def choose(fmt: str | None, level: str | None, verbose: bool) -> tuple[str, int]:
    """The format and Corral's level from the options, else the environment, else defaults."""
    fmt = (fmt or os.environ.get(ENV_LOG_FORMAT) or "auto").lower()
    if fmt not in FORMATS:
        raise ConfigError(f"log format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    if fmt == "auto":
        fmt = "rich" if sys.stderr.isatty() else "plain"
    name = "debug" if verbose else (level or os.environ.get(ENV_LOG_LEVEL) or "info").lower()
    if name not in LEVELS:
        raise ConfigError(f"log level must be one of {', '.join(LEVELS)}, got {name!r}")
    return fmt, getattr(logging, name.upper())


def setup(fmt: str | None = None, level: str | None = None, *, verbose: bool = False) -> None:
    """Configure the root logger for a ``corral`` command that runs for a while (a worker)."""
    chosen, corral_level = choose(fmt, level, verbose)
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
    # a worker's line per job cheap (a fifth of its cost)
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.WARNING)  # other libraries: warnings and worse
    logging.getLogger("corral").setLevel(corral_level)
