"""``corral worker``, ``corral info`` and ``corral demo``.

Logging handlers are configured here (for the worker) and nowhere else.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
from datetime import timedelta
from typing import Annotated, Any

import typer

from corral.app import App
from corral.cli._common import (
    JsonOption,
    UrlOption,
    console,
    err_console,
    fail_with,
    ops_app,
    print_json,
    run,
)
from corral.cli._logging import setup as setup_logging
from corral.cli._tables import Column, print_table
from corral.cli._target import load_app
from corral.errors import ConfigError, CorralError
from corral.loop import run as run_loop
from corral.settings import ENV_REDIS_URL, Settings

log = logging.getLogger(__name__)


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


def worker(
    target: Annotated[
        str, typer.Argument(metavar="MODULE:APP", help="The App to serve, e.g. myapp.jobs:app.")
    ],
    queue: Annotated[
        list[str] | None,
        typer.Option(
            "--queue",
            "-q",
            metavar="QUEUE",
            help="Queue to serve (repeat; in order; default: all).",
        ),
    ] = None,
    weight: Annotated[
        list[str] | None,
        typer.Option(
            "--weight",
            "-w",
            metavar="QUEUE=WEIGHT",
            help="Serve queues by weight, not strictly (repeat).",
        ),
    ] = None,
    concurrency: Annotated[
        int,
        typer.Option(
            "--concurrency", "-c", min=1, help="Jobs run at once, per process (at least 1)."
        ),
    ] = 10,
    processes: Annotated[
        int,
        typer.Option(
            "--processes", "-p", min=1, help="Worker processes, each with --concurrency slots."
        ),
    ] = 1,
    grace: Annotated[
        float, typer.Option(metavar="SECONDS", help="Time running jobs get at shutdown.")
    ] = 30.0,
    burst: Annotated[bool, typer.Option("--burst", help="Exit once the queues are empty.")] = False,
    unknown_job_grace: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="How long a job this App does not define is handed back for other workers "
            "(a rolling deploy) before it is dead.",
        ),
    ] = 600.0,
    url: UrlOption = None,
    log_format: Annotated[
        str | None,
        typer.Option(
            metavar="FORMAT",
            help="auto (rich at a terminal, else plain), rich, plain (one line, ISO time) or "
            "json (one object per line). Default: $CORRAL_LOG_FORMAT, else auto.",
        ),
    ] = None,
    log_level: Annotated[
        str | None,
        typer.Option(
            metavar="LEVEL",
            help="Corral's records from this level: debug, info (a line per job), warning, "
            "error. Default: $CORRAL_LOG_LEVEL, else info.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose", "-v", help="Corral's debug records too (same as --log-level debug)."
        ),
    ] = False,
) -> None:
    """Run a worker (or a supervised pool of worker processes) for an App."""
    try:
        setup_logging(log_format, log_level, verbose=verbose)
    except CorralError as exc:
        raise fail_with(exc) from None
    try:
        if url:
            Settings.from_url(url)
            os.environ[ENV_REDIS_URL] = url
        app = load_app(target)
        if url:
            app.configure(app.settings.replace(redis_url=url))
        weights = _parse_weights(weight)
        # Resolved here, not in the loop: a refused or unstartable server is one line.
        server_url = app.redis_url
        if processes > 1:
            args = ["--concurrency", str(concurrency), "--grace", str(grace)]
            args += ["--unknown-job-grace", str(unknown_job_grace)]
            args += [a for q in queue or [] for a in ("--queue", q)]
            args += [a for w in weight or [] for a in ("--weight", w)]
            args += ["--burst"] if burst else []
            args += ["--log-format", log_format] if log_format else []
            args += ["--log-level", log_level] if log_level else []
            args += ["--verbose"] if verbose else []
            _run_supervisor(target, args, processes, server_url, burst)
            return
        from corral.worker import Worker

        w = Worker(
            app,
            queue or None,
            concurrency=concurrency,
            weights=weights,
            grace=timedelta(seconds=grace),
            burst=burst,
            unknown_job_grace=timedelta(seconds=unknown_job_grace),
        )
    except CorralError as exc:
        raise fail_with(exc) from None
    try:
        run_loop(_serve(app, w))
    except CorralError as exc:  # Redis unreachable at start, a wrong URL, ...
        raise fail_with(exc) from None


async def _serve(app: App, w: Any) -> None:
    loop = asyncio.get_running_loop()
    signals = 0

    def on_signal() -> None:
        # The first signal starts a graceful shutdown, a second one skips the grace period.
        nonlocal signals
        signals += 1
        if signals == 1:
            err_console.print("shutting down (Ctrl-C again to force)", highlight=False)
        w.stop(force=signals > 1)

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
    target: str, args: list[str], processes: int, server_url: str, burst: bool
) -> None:
    from corral.worker.supervisor import Supervisor, worker_command

    env = dict(os.environ)
    env[ENV_REDIS_URL] = server_url  # the children use the parent's server (maybe the shared one)
    Supervisor(worker_command(target, args), processes, env, burst=burst).run()


async def queue_rows(app: App) -> list[dict[str, Any]]:
    engine = await app.engine()
    out = []
    for name in await engine.queues():
        counts = dataclasses.asdict(await engine.counts(name))
        out.append({"queue": name, **counts})
    return out


def info(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Queues with their job counts per state (also `corral queue ls`)."""
    try:
        app = ops_app(url)
    except CorralError as exc:
        raise fail_with(exc) from None
    rows = run(app, lambda: queue_rows(app))
    if as_json:
        print_json(rows)
        return
    if not rows:
        console.print("no queues yet")
        return
    counts = ("waiting", "delayed", "active", "completed", "dead")
    columns = [Column("queue"), *(Column(c, justify="right") for c in counts), Column("paused")]
    cells = [
        [row["queue"], *(str(row[c]) for c in counts), "yes" if row["paused"] else ""]
        for row in rows
    ]
    print_table(console, "Corral queues", columns, cells)


def demo(
    jobs: Annotated[
        int, typer.Option(metavar="N", help="How many shop webhooks to simulate.")
    ] = 240,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Jobs the demo's worker runs at once.")
    ] = 32,
    url: UrlOption = None,
) -> None:
    """Simulate shop webhooks and run them through a worker, with a live view and a summary."""
    logging.basicConfig(level=logging.ERROR)
    from corral.demo import run_demo

    try:
        code = run_demo(webhooks=jobs, concurrency=concurrency, url=url, console=console)
    except CorralError as exc:
        raise fail_with(exc) from None
    raise typer.Exit(code)
