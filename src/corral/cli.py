"""The ``corral`` command: ``worker``, ``info`` and ``demo`` (Typer + Rich).

Exit codes scripts can rely on: 0 ok, 1 not found / failed, 2 bad usage or configuration.
Logging handlers are configured here and nowhere else.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import logging
import os
import signal
import sys
from datetime import timedelta
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.table import Table

from corral.app import App
from corral.errors import ConfigError, CorralError
from corral.settings import ENV_REDIS_URL, Settings

cli = typer.Typer(
    name="corral",
    help="Corral: Redis-backed background jobs. Run workers, inspect queues, try the demo.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)
log = logging.getLogger(__name__)

UrlOption = Annotated[
    str | None,
    typer.Option("--url", help=f"Redis URL (default: ${ENV_REDIS_URL}, else an embedded server)"),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for scripts.")]


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(console=err_console, show_path=False, rich_tracebacks=True)],
    )


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def load_app(target: str) -> App:
    """Import ``module:attribute`` (the current directory is importable) and return the App."""
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise ConfigError(f"expected MODULE:APP (e.g. myapp.jobs:app), got {target!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"cannot import {module_name!r}: {exc}") from exc
    app = getattr(module, attr, None)
    if not isinstance(app, App):
        raise ConfigError(f"{target!r} is not a corral.App (got {type(app).__name__})")
    return app


def _parse_weights(values: list[str] | None) -> dict[str, int] | None:
    if not values:
        return None
    weights: dict[str, int] = {}
    for item in values:
        name, _, weight = item.partition("=")
        try:
            weights[name] = int(weight)
        except ValueError:
            raise ConfigError(f"--weight expects QUEUE=INT, got {item!r}") from None
    return weights


@cli.command()
def worker(
    target: Annotated[str, typer.Argument(help="The App to serve, as MODULE:ATTRIBUTE.")],
    queue: Annotated[
        list[str] | None, typer.Option("--queue", "-q", help="Queue to serve (repeat; in order).")
    ] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option("--weight", "-w", help="QUEUE=WEIGHT: serve queues by weight, not strictly."),
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", "-c", min=1)] = 10,
    processes: Annotated[int, typer.Option("--processes", "-p", min=1)] = 1,
    grace: Annotated[float, typer.Option(help="Seconds running jobs get at shutdown.")] = 30.0,
    burst: Annotated[bool, typer.Option(help="Exit once the queues are empty.")] = False,
    url: UrlOption = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v")] = False,
) -> None:
    """Run a worker (or a supervised pool of worker processes) for an App."""
    _setup_logging(verbose)
    try:
        if url:
            Settings.from_url(url)
            os.environ[ENV_REDIS_URL] = url
        app = load_app(target)
        if url:
            app.configure(app.settings.replace(redis_url=url))
        weights = _parse_weights(weight)
        if processes > 1:
            _run_supervisor(app, target, queue, weight, concurrency, processes, grace, burst)
            return
        from corral.worker import Worker

        w = Worker(
            app,
            queue or None,
            concurrency=concurrency,
            weights=weights,
            grace=timedelta(seconds=grace),
            burst=burst,
        )
    except CorralError as exc:
        raise _fail(str(exc)) from None
    asyncio.run(_serve(app, w))


async def _serve(app: App, w: Any) -> None:
    loop = asyncio.get_running_loop()
    signals = {"count": 0}

    def on_signal() -> None:
        signals["count"] += 1
        w.stop(force=signals["count"] > 1)

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal)
    try:
        stats = await w.run()
        log.info(
            "worker stopped: %d completed, %d dead, %d handed back",
            stats.completed,
            stats.dead,
            stats.released,
        )
    finally:
        await app.close()


def _run_supervisor(
    app: App,
    target: str,
    queue: list[str] | None,
    weight: list[str] | None,
    concurrency: int,
    processes: int,
    grace: float,
    burst: bool,
) -> None:
    from corral.worker.supervisor import Supervisor, worker_command

    args: list[str] = ["--concurrency", str(concurrency), "--grace", str(grace)]
    for q in queue or []:
        args += ["--queue", q]
    for w in weight or []:
        args += ["--weight", w]
    if burst:
        args.append("--burst")
    env = dict(os.environ)
    env[ENV_REDIS_URL] = app.redis_url  # children share the parent's (maybe embedded) server
    try:
        Supervisor(worker_command(target, args), processes, env, burst=burst).run()
    finally:
        app.stop_embedded()


@cli.command()
def info(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Queues with their job counts per state."""
    try:
        app = App(Settings.from_url(url) if url else Settings.from_env())
        if app.settings.redis_url is None:
            raise ConfigError(f"set {ENV_REDIS_URL} or pass --url to inspect a server")
    except CorralError as exc:
        raise _fail(str(exc)) from None
    rows = asyncio.run(_info(app))
    if as_json:
        console.print_json(json.dumps(rows))
        return
    table = Table(title="Corral queues")
    for col in ("queue", "waiting", "delayed", "active", "completed", "dead", "paused"):
        table.add_column(col, justify="left" if col == "queue" else "right")
    for row in rows:
        table.add_row(
            row["queue"],
            *(str(row[c]) for c in ("waiting", "delayed", "active", "completed", "dead")),
            "yes" if row["paused"] else "",
        )
    console.print(table if rows else "no queues yet")


async def _info(app: App) -> list[dict[str, Any]]:
    try:
        engine = await app.engine()
        out = []
        for name in await engine.queues():
            counts = await engine.counts(name)
            out.append({"queue": name, **counts, "paused": bool(counts["paused"])})
        return out
    except CorralError as exc:
        raise _fail(str(exc), 1) from None
    finally:
        await app.close()


@cli.command()
def demo(
    jobs: Annotated[int, typer.Option(help="How many shop webhooks to simulate.")] = 240,
    concurrency: Annotated[int, typer.Option(min=1)] = 32,
    url: UrlOption = None,
) -> None:
    """Simulate shop webhooks and run them through a worker, with a live view and a summary."""
    logging.basicConfig(level=logging.ERROR)
    from corral.demo import run_demo

    try:
        code = run_demo(webhooks=jobs, concurrency=concurrency, url=url, console=console)
    except CorralError as exc:
        raise _fail(str(exc), 1) from None
    raise typer.Exit(code)


def main() -> None:
    cli()
