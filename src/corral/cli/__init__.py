"""The ``corral`` command (Typer + Rich): a thin layer over the Python API.

Exit codes scripts can rely on are in ``_common.Exit`` (and docs/operations.md). Every read
command takes ``--json``; destructive ones ask unless ``--yes`` and take ``--dry-run``. Works
without the job code except where a payload must be validated.
"""

from __future__ import annotations

import typer

from corral.cli._common import fail_with
from corral.cli._dlq import dlq_cli
from corral.cli._enqueue import enqueue
from corral.cli._jobs import jobs_cli
from corral.cli._queues import queue_cli
from corral.cli._server import server_cli
from corral.cli._worker import demo, info, worker
from corral.errors import CorralError

cli = typer.Typer(
    name="corral",
    help="Corral: Redis-backed background jobs. Run workers, inspect and fix queues, try the demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
cli.command()(worker)
cli.command()(info)
cli.command()(demo)
cli.command()(enqueue)
cli.add_typer(queue_cli, name="queue")
cli.add_typer(jobs_cli, name="jobs")
cli.add_typer(dlq_cli, name="dlq")
cli.add_typer(server_cli, name="server")


def main() -> None:
    try:
        cli()
    except CorralError as exc:  # configuration found while building a command
        raise SystemExit(fail_with(exc).exit_code) from None


__all__ = ["cli", "main"]
