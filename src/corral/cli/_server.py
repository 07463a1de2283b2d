"""``corral server start|stop|status|url``: the project's shared server.

It is what every process of the project uses when ``CORRAL_REDIS_URL`` is not set (see
:mod:`corral.devserver`); these commands start it ahead of time, look at it, or stop it. Exit
codes: 0 ok, 1 not running (``stop``, ``status``), 2 bad usage or configuration, 3 the server
could not be started or does not answer (as every command exits when Redis is unavailable).
"""

from __future__ import annotations

import os
from typing import Annotated

import typer

from corral import devserver
from corral.cli._common import JsonOption, fail_with, print_json
from corral.cli._help import CorralTyper
from corral.errors import CorralError
from corral.settings import ENV_REDIS_URL

server_cli = CorralTyper(help="The project's shared server, used when CORRAL_REDIS_URL is not set.")

IdleOption = Annotated[
    str | None,
    typer.Option(
        "--idle",
        metavar="DURATION",
        help="Stop after this long with no client: 90s, 10m, 1h; 0 for never "
        f"(default: ${devserver.ENV_IDLE}, else 15m).",
    ),
]


def _fail(exc: CorralError) -> typer.Exit:
    return fail_with(exc)  # EmbeddedServerError: 3, like any unavailable server


def _span(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{int(seconds // size)}{unit}"
    return f"{int(seconds)}s"


@server_cli.command("start")
def start(idle: IdleOption = None, as_json: JsonOption = False) -> None:
    """Start the shared server (if it is not running) and say where it is."""
    try:
        wanted = None if idle is None else devserver.parse_idle(idle, "--idle")
        _, started = devserver.ensure_running(idle=wanted)
        info = devserver.status()
    except CorralError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json({"started": started, **info.as_dict()})
        return
    verb = "started" if started else "already running"
    typer.echo(
        f"{verb}: {info.url} (pid {info.server_pid}, data in {info.data_dir}, "
        f"{devserver.describe_idle(info.idle_seconds or 0)})"
    )
    if not started and wanted is not None:
        typer.echo("note: --idle applies when the server starts; stop it first to change it")
    if os.environ.get(ENV_REDIS_URL):
        typer.echo(f"note: {ENV_REDIS_URL} is set here, so apps use that, not this server")


@server_cli.command("stop")
def stop(as_json: JsonOption = False) -> None:
    """Stop the shared server; its data stays for the next start. Exit 1 if not running."""
    home = devserver.locate()
    try:
        stopped = devserver.stop(home)
    except CorralError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json({"stopped": stopped, "home": str(home.path), "data_dir": str(home.data)})
    elif stopped:
        typer.echo(f"stopped (data kept in {home.data})")
    else:
        typer.echo(f"not running (home {home.path})")
    if not stopped:
        raise typer.Exit(1)


@server_cli.command("status")
def status(as_json: JsonOption = False) -> None:
    """Is the shared server running: its URL, pid, data, clients, keys, memory, uptime.
    Exit 1 if it is not running."""
    try:
        info = devserver.status()
    except CorralError as exc:
        raise _fail(exc) from None
    if as_json:
        print_json(info.as_dict())
    elif not info.running:
        typer.echo(f"not running (home {info.home})")
    else:
        rows = [
            ("url", info.url),
            ("pid", f"{info.server_pid} (keeper {info.keeper_pid or 'gone'})"),
            ("server", f"{info.version} ({info.binary or 'unknown binary'})"),
            ("data", info.data_dir),
            ("clients", str(info.clients)),
            ("keys", str(info.keys)),
            ("memory", str(info.memory_human)),
            ("uptime", _span(info.uptime_seconds or 0)),
            ("idle", devserver.describe_idle(info.idle_seconds or 0)),
        ]
        typer.echo("running")
        for name, value in rows:
            typer.echo(f"  {name:<8} {value}")
    if not info.running:
        raise typer.Exit(1)


@server_cli.command("url")
def url() -> None:
    """Print the shared server's URL, starting it if needed:
    ``export CORRAL_REDIS_URL=$(corral server url)``."""
    try:
        state, _ = devserver.ensure_running()
    except CorralError as exc:
        raise _fail(exc) from None
    typer.echo(state.url)
