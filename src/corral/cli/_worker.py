"""``corral worker``, ``corral info`` and ``corral demo``.

Logging handlers are configured here (for the worker) and nowhere else.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from corral.app import App
from corral.cli._common import (
    JsonOption,
    UrlOption,
    console,
    err_console,
    fail,
    fail_with,
    ops_app,
    print_json,
    run,
)
from corral.cli._info import print_queues, queue_rows
from corral.cli._info import watch as watch_queues
from corral.cli._logging import setup as setup_logging
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
    burst: Annotated[
        bool,
        typer.Option(
            "--burst",
            help="Exit once nothing is claimable now (not-yet-due and paused jobs are left).",
        ),
    ] = False,
    unknown_job_grace: Annotated[
        float,
        typer.Option(
            metavar="SECONDS",
            help="How long a job this App does not define is handed back for other workers "
            "(a rolling deploy) before it is dead.",
        ),
    ] = 600.0,
    ready_file: Annotated[
        Path | None,
        typer.Option(
            "--ready-file",
            metavar="PATH",
            help="Write the worker id to PATH once connected and claiming; removed at exit.",
        ),
    ] = None,
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
            help="Records from this level, the handlers' own included: debug, info (a line "
            "per job), warning, error. Default: $CORRAL_LOG_LEVEL, else info.",
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option("--verbose", "-v", help="Corral's debug records too."),
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
            _run_supervisor(target, args, processes, server_url, burst, ready_file, grace)
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
        run_loop(_serve(app, w, ready_file))
    except CorralError as exc:  # Redis unreachable at start, a wrong URL, ...
        raise fail_with(exc) from None


async def _serve(app: App, w: Any, ready_file: Path | None) -> None:
    from corral.worker.ready import remove  # with the worker, not with every command

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
    announce = None
    if ready_file is not None:
        remove([ready_file])  # a killed worker's file must not say "ready"
        announce = asyncio.create_task(_announce(w, ready_file))
    try:
        stats = await w.run()
        log.info(
            "worker stopped: %d completed, %d dead, %d handed back",
            stats.completed,
            stats.dead,
            stats.released,
        )
    finally:
        if announce is not None:
            announce.cancel()
            await asyncio.gather(announce, return_exceptions=True)
        if ready_file is not None:
            remove([ready_file])
        await app.close()


async def _announce(w: Any, ready_file: Path) -> None:
    """Write the ready file once the worker is claiming (whole or not at all: a probe never
    reads half of it)."""
    from corral.worker.ready import write_ready_file  # with the worker, not every command

    await w.ready.wait()
    write_ready_file(ready_file, w.id + "\n")


def _run_supervisor(
    target: str,
    args: list[str],
    processes: int,
    server_url: str,
    burst: bool,
    ready_file: Path | None,
    grace: float,
) -> None:
    from corral.worker.supervisor import STOP_MARGIN_S, Supervisor, worker_command

    env = dict(os.environ)
    env[ENV_REDIS_URL] = server_url  # the children use the parent's server (maybe the shared one)
    command = worker_command(target, args)
    # the children get their whole grace period, then time to hand jobs back and run hooks
    stop_timeout = grace + STOP_MARGIN_S
    Supervisor(
        command, processes, env, stop_timeout=stop_timeout, burst=burst, ready_file=ready_file
    ).run()


def info(
    url: UrlOption = None,
    as_json: JsonOption = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Refresh in place until Ctrl-C (which exits 0).")
    ] = False,
    interval: Annotated[
        float,
        typer.Option(metavar="SECONDS", min=0.1, help="Seconds between refreshes with --watch."),
    ] = 2.0,
) -> None:
    """Queues with their job counts per state (also `corral queue ls`)."""
    if watch and as_json:
        raise fail("--watch is for people and --json for scripts: use one of them")
    try:
        app = ops_app(url)
    except CorralError as exc:
        raise fail_with(exc) from None
    if watch:
        run(app, lambda: watch_queues(app, interval))
        return
    rows = run(app, lambda: queue_rows(app))
    if as_json:
        print_json(rows)
    else:
        print_queues(rows)


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
