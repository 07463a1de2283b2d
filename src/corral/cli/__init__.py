"""The ``corral`` command (Typer): a thin layer over the Python API.

Exit codes scripts can rely on are in ``_common.Exit`` (and docs/operations.md). Every read
command takes ``--json``; destructive ones ask unless ``--yes`` and take ``--dry-run``. Works
without the job code except where a payload must be validated. Help is plain text
(``_help``), checked for every command by tests/unit/test_cli_help.py.

Each top-level command lives in a module imported only when that command runs: ``corral
--help`` imports no Redis client, no pydantic and no worker, so it answers at once, and
``corral queue ls`` imports only what listing queues needs (figures in docs/performance.md).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import typer

from corral.cli._help import CorralGroup, CorralTyper

if TYPE_CHECKING:
    from typer._click.core import Command, Context


@dataclass(frozen=True, slots=True)
class Entry:
    """A top-level command: where it lives, and the line the top-level help shows for it
    (kept here so the help need not import it; a test checks it is the command's own)."""

    name: str
    module: str
    attribute: str
    summary: str


COMMANDS = (
    Entry(
        "worker",
        "corral.cli._worker",
        "worker",
        "Run a worker (or a supervised pool of worker processes) for an App.",
    ),
    Entry(
        "info",
        "corral.cli._worker",
        "info",
        "Queues with their job counts per state (also `corral queue ls`).",
    ),
    Entry(
        "workers",
        "corral.cli._workers",
        "workers",
        "Live workers: host, pid, queues, running jobs, when they started and last reported.",
    ),
    Entry(
        "demo",
        "corral.cli._worker",
        "demo",
        "Simulate shop webhooks and run them through a worker, with a live view and a summary.",
    ),
    Entry(
        "enqueue",
        "corral.cli._enqueue",
        "enqueue",
        "Enqueue a job by name; the arguments are validated like a call from Python.",
    ),
    Entry("queue", "corral.cli._queues", "queue_cli", "See and steer queues."),
    Entry(
        "groups",
        "corral.cli._groups",
        "groups_cli",
        "See and steer the groups (tenants) of a queue.",
    ),
    Entry("jobs", "corral.cli._jobs", "jobs_cli", "Find, inspect and act on jobs."),
    Entry("dlq", "corral.cli._dlq", "dlq_cli", "The dead-letter queue: inspect, replay, purge."),
    Entry(
        "server",
        "corral.cli._server",
        "server_cli",
        "The project's shared server, used when CORRAL_REDIS_URL is not set.",
    ),
)


def load(entry: Entry) -> Command:
    """The Click command of a top-level entry, importing its module now."""
    target: Any = getattr(importlib.import_module(entry.module), entry.attribute)
    if not isinstance(target, typer.Typer):  # a plain function: a one-command app
        single = CorralTyper()
        single.command(name=entry.name)(target)
        target = single
    command = typer.main.get_command(target)
    command.name = entry.name
    return command


class LazyGroup(CorralGroup):
    """The root group: subcommands are imported when they are run (or their help asked)."""

    def list_commands(self, ctx: Context) -> list[str]:
        return [e.name for e in COMMANDS]

    def get_command(self, ctx: Context, cmd_name: str) -> Command | None:
        entry = next((e for e in COMMANDS if e.name == cmd_name), None)
        if entry is None:
            return super().get_command(ctx, cmd_name)
        if cmd_name not in self.commands:
            self.commands[cmd_name] = load(entry)
        return self.commands[cmd_name]

    def summaries(self, ctx: Context, width: int) -> list[tuple[str, str]]:
        return [(e.name, e.summary) for e in COMMANDS]


cli = CorralTyper(name="corral", cls=LazyGroup)


def show_version(value: bool) -> None:
    if value:
        from corral import __version__

        typer.echo(f"corral {__version__}")
        raise typer.Exit()


@cli.callback()
def root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="Show the version and exit.", is_eager=True, callback=show_version
        ),
    ] = False,
) -> None:
    """Corral: Redis-backed background jobs. Run workers, inspect and fix queues, try the demo."""


def main() -> None:
    from corral.errors import CorralError

    try:
        cli(prog_name="corral")  # also as `python -m corral`: usage lines say what to type
    except CorralError as exc:  # configuration found while building a command
        from corral.cli._common import fail_with

        raise SystemExit(fail_with(exc).exit_code) from None


__all__ = ["cli", "main"]
