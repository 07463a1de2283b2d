"""Shared pieces of the CLI: consoles, options, connecting, output, time parsing, exits.

Exit codes (the table in docs/operations.md): see :class:`Exit`.
"""

from __future__ import annotations

import dataclasses
import json
import os
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from enum import IntEnum
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from corral.app import App
from corral.cli._target import load_app
from corral.errors import (
    ConfigError,
    ConnectionLost,
    CorralError,
    EmbeddedServerError,
    JobNotFound,
    PayloadError,
    QueueFull,
    QueueNotFound,
    ServerError,
)
from corral.filters import JobFilter
from corral.loop import run as run_loop
from corral.models import JobInfo, JobSummary
from corral.retry import Backoff
from corral.settings import ENV_REDIS_URL, Settings, parse_duration

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", metavar="URL", help=f"Redis URL (default: ${ENV_REDIS_URL})."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]
YesOption = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]
DryRunOption = Annotated[
    bool, typer.Option("--dry-run", help="Only show what would be touched; change nothing.")
]
AppOption = Annotated[
    str | None,
    typer.Option(
        "--app", metavar="MODULE:APP", help="The App defining the jobs (to validate payloads)."
    ),
]
QueueArg = Annotated[str, typer.Argument(metavar="QUEUE", help="Queue name.")]


class Exit(IntEnum):
    """What every ``corral`` command's exit status means."""

    OK = 0
    NOT_FOUND = 1  # no such queue or job, or the operation failed
    USAGE = 2  # bad usage or configuration (options, URL, payload, a refused embedded server)
    UNAVAILABLE = 3  # Redis unreachable or refusing (connection, server error)
    NOT_DONE = 4  # nothing done: not in a state for this action (a job; a full queue), or "no"
    TIMED_OUT = 5  # a wait ran out of time (queue wait-idle --timeout): the state is said
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it); what was done is said


def exit_code(exc: CorralError) -> Exit:
    if isinstance(exc, JobNotFound | QueueNotFound):
        return Exit.NOT_FOUND
    if isinstance(exc, ConfigError | PayloadError):
        return Exit.USAGE
    if isinstance(exc, ConnectionLost | ServerError | EmbeddedServerError):
        return Exit.UNAVAILABLE
    if isinstance(exc, QueueFull):
        return Exit.NOT_DONE
    return Exit.NOT_FOUND


def fail(message: str, code: int = Exit.USAGE) -> typer.Exit:
    # one line however long (scripts grep it), and a message's brackets are not markup
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


def fail_with(exc: CorralError) -> typer.Exit:
    return fail(str(exc), exit_code(exc))


def parse_when(text: str) -> datetime:
    """A moment: a duration ago (``1h``) or an ISO date-time (UTC if no zone given)."""
    try:
        return datetime.now(UTC) - parse_duration(text)
    except ConfigError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"not a time: {text!r} (use 1h for an hour ago, or ISO 8601)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def make_filter(
    name: str | None,
    group: str | None,
    id_prefix: str | None,
    error: str | None,
    since: str | None,
    until: str | None,
    message: str | None = None,
) -> JobFilter:
    return JobFilter(
        name=name,
        group=group,
        id_prefix=id_prefix,
        error_type=error,
        error_message=message,
        since=parse_when(since) if since else None,
        until=parse_when(until) if until else None,
    )


def ops_app(url: str | None, app_target: str | None = None) -> App:
    """An App for operator commands: the user's (for payload validation) or a bare one. With
    no URL, the project's shared server (its data persists, so there is something to see),
    unless ``CORRAL_EMBEDDED=0`` refuses it."""
    settings = Settings.from_url(url) if url else Settings.from_env()
    if app_target:
        if url:
            os.environ[ENV_REDIS_URL] = url
        app = load_app(app_target)
        if settings.redis_url:
            app.configure(app.settings.replace(redis_url=settings.redis_url))
        return app
    return App(settings)


def run(
    app: App,
    work: Callable[[], Coroutine[Any, Any, T]],
    *,
    interrupted: Callable[[], str] | None = None,
) -> T:
    """Run an async operation, closing connections, mapping errors to exit codes. Ctrl-C
    exits INTERRUPTED saying ``interrupted()``: what the operation had done by then."""

    async def main() -> T:
        try:
            return await work()
        finally:
            await app.close()

    try:
        return run_loop(main())
    except CorralError as exc:
        raise fail_with(exc) from None
    except KeyboardInterrupt:
        said = interrupted() if interrupted else ""
        err_console.print(f"interrupted{': ' if said else ''}{escape(said)}", soft_wrap=True)
        raise typer.Exit(Exit.INTERRUPTED) from None


def print_json(value: Any) -> None:
    console.print_json(json.dumps(to_plain(value)))


def say(result: Any, as_json: bool, text: str) -> None:
    """A command's answer: ``result`` as JSON with ``--json``, else ``text`` for humans."""
    if as_json:
        print_json(result)
    else:  # ids, names and error messages are not markup; one line however long
        console.print(escape(text), soft_wrap=True)


def to_plain(value: Any) -> Any:
    """A read model as JSON values: times in ISO 8601, durations in seconds, a backoff as its
    kind and numbers."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
        if isinstance(value, Backoff):
            out = {"kind": type(value).__name__.lower(), **out}
        return out
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if callable(value):  # a Custom backoff's function: named, not serialised
        return getattr(value, "__qualname__", repr(value))
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    return value


def span(seconds: float) -> str:
    """``3m``, ``20s``, ``2h``: a duration for humans, in its largest whole unit."""
    seconds = abs(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


def ago(moment: datetime | None) -> str:
    """``3m ago`` / ``in 5s``: relative times for humans."""
    if moment is None:
        return ""
    delta = (moment - datetime.now(UTC)).total_seconds()
    return f"in {span(delta)}" if delta > 0 else f"{span(delta)} ago"


def timing(job: JobSummary | JobInfo) -> str:
    """What a pending job will do next: ``in 9m`` (delayed: when it is due), ``running 3m,
    lease 20s`` (active: how long its attempt has run, how long its lease has left); '' else."""
    if job.due_at is not None:
        return ago(job.due_at)
    if job.lease_until is None:
        return ""
    now = datetime.now(UTC)
    left = (job.lease_until - now).total_seconds()
    lease = f"lease {span(left)}" if left > 0 else f"lease expired {span(left)} ago"
    ran = job.running_for(now)
    return lease if ran is None else f"running {span(ran.total_seconds())}, {lease}"


def short(text: str | None, width: int = 60) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= width else line[: width - 1] + "…"


def confirm(question: str, yes: bool) -> None:
    """Ask before a destructive command; without a terminal, --yes is required."""
    if yes:
        return
    if not sys.stdin.isatty():
        raise fail(f"{question} Refusing without --yes (no terminal to ask).", Exit.USAGE)
    if not typer.confirm(question):
        raise fail("aborted", Exit.NOT_DONE)


@contextmanager
def progress_bar(label: str, enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar for operations that touch more than a page of jobs."""
    if not enabled:
        yield lambda done, total: None
        return
    bar = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), console=err_console, transient=True
    )
    task = bar.add_task(label, total=None)
    with bar:

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total or None)

        yield update
