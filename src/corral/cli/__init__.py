"""The ``corral`` command (Typer + Rich): a thin layer over the Python API.

Exit codes scripts can rely on are in ``_common.Exit`` (and docs/operations.md). Every read
command takes ``--json``; destructive ones ask unless ``--yes`` and take ``--dry-run``. Works
without the job code except where a payload must be validated. Help is plain text
(``_help``), checked for every command by tests/unit/test_cli_help.py.
"""

from __future__ import annotations

from typing import Annotated

import typer

from corral.cli._common import fail_with
from corral.cli._dlq import dlq_cli
from corral.cli._enqueue import enqueue
from corral.cli._groups import groups_cli
from corral.cli._help import CorralTyper
from corral.cli._jobs import jobs_cli
from corral.cli._queues import queue_cli
from corral.cli._server import server_cli
from corral.cli._worker import demo, info, worker
from corral.cli._workers import workers
from corral.errors import CorralError

cli = CorralTyper(name="corral")
cli.command()(worker)
cli.command()(info)
cli.command()(workers)
cli.command()(demo)
cli.command()(enqueue)
cli.add_typer(queue_cli, name="queue")
cli.add_typer(groups_cli, name="groups")
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(dlq_cli, name="dlq")
cli.add_typer(server_cli, name="server")


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
    try:
        cli(prog_name="corral")  # also as `python -m corral`: usage lines say what to type
    except CorralError as exc:  # configuration found while building a command
        raise SystemExit(fail_with(exc).exit_code) from None


__all__ = ["cli", "main"]
