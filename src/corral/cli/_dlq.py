"""``corral dlq ls|show|replay|purge``: the dead-letter queue, with filters."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer

from corral.cli._common import (
    AppOption,
    DryRunOption,
    Exit,
    JsonOption,
    QueueArg,
    UrlOption,
    YesOption,
    confirm,
    console,
    make_filter,
    ops_app,
    print_json,
    progress_bar,
    run,
    say,
    to_plain,
)
from corral.cli._jobs import (
    ErrorOpt,
    GroupOpt,
    IdArg,
    LimitOpt,
    MessageOpt,
    NameOpt,
    OffsetOpt,
    PrefixOpt,
    SinceOpt,
    UntilOpt,
    print_job,
    summary_table,
)
from corral.errors import ConfigError

dlq_cli = typer.Typer(help="The dead-letter queue: inspect, replay, purge.", no_args_is_help=True)


@dlq_cli.command("ls")
def list_dead(
    queue: QueueArg,
    name: NameOpt = None,
    group: GroupOpt = None,
    id_prefix: PrefixOpt = None,
    error: ErrorOpt = None,
    message: MessageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    count: Annotated[bool, typer.Option("--count", help="Only count the matches.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Dead jobs (exhausted, fatal, stalled, poison, cancelled), filtered."""
    where = make_filter(name, group, id_prefix, error, since, until, message)
    app = ops_app(url)
    dead = app.queue(queue).dead_letters
    if count:
        n = run(app, lambda: dead.count(where))
        say({"queue": queue, "count": n}, as_json, str(n))
        return
    jobs = run(app, lambda: dead.jobs(where, offset=offset, limit=limit))
    if as_json:
        print_json([j.to_dict() for j in jobs])
    else:
        console.print(summary_table(f"{queue}: dead letters", jobs) if jobs else "no dead jobs")


@dlq_cli.command()
def show(
    queue: QueueArg, job_id: IdArg, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """One dead job with its full error history and tracebacks."""
    print_job(url, queue, job_id, as_json, dead_only=True)


@dlq_cli.command()
def replay(
    queue: QueueArg,
    job_id: Annotated[str | None, typer.Argument(help="One job id (or use filters/--all).")] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every dead job (with filters).")] = False,
    name: NameOpt = None,
    group: GroupOpt = None,
    id_prefix: PrefixOpt = None,
    error: ErrorOpt = None,
    message: MessageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    payload: Annotated[
        str | None, typer.Option("--payload", help="Edited payload (JSON), one job; needs --app.")
    ] = None,
    rate: Annotated[float | None, typer.Option("--rate", help="At most N jobs per second.")] = None,
    app_target: AppOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send dead jobs back to waiting with fresh attempts (recording who replayed them)."""
    where = make_filter(name, group, id_prefix, error, since, until, message)
    if payload is not None and not job_id:
        raise typer.BadParameter("--payload edits one job: give its id")
    if not job_id and not all_jobs and where.empty:
        raise typer.BadParameter("give a job id, filters, or --all")
    app = ops_app(url, app_target)
    dead = app.queue(queue).dead_letters
    if job_id:
        edited: Any = None
        if payload is not None:
            if not app_target:
                raise ConfigError("--payload needs --app MODULE:APP to validate the edit")
            try:
                edited = orjson.loads(payload)
            except orjson.JSONDecodeError as exc:
                raise ConfigError(f"--payload is not JSON: {exc}") from None
        if dry_run:
            info = run(app, lambda: dead.get(job_id))
            result: dict[str, Any] = {"id": job_id, "would_replay": 1, "state": info.state}
            say(result, as_json, f"would replay {job_id}")
            return
        ok = run(app, lambda: dead.replay_one(job_id, payload=edited))
        say(
            {"id": job_id, "replayed": ok}, as_json, f"{job_id}: {'replayed' if ok else 'not dead'}"
        )
        if not ok:
            raise typer.Exit(Exit.NOT_DONE)
        return
    matched = run(app, lambda: dead.count(where))
    if dry_run:
        result = {"would_replay": matched, "dry_run": True}
        say(result, as_json, f"would replay {matched} job(s)")
        return
    confirm(f"Replay {matched} dead job(s) of {queue!r}?", yes)
    with progress_bar("replaying", matched > 50) as bar:
        report = run(app, lambda: dead.replay(where, rate=rate, progress=bar))
    say(to_plain(report), as_json, f"replayed {report.replayed} job(s)")


@dlq_cli.command()
def purge(
    queue: QueueArg,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every dead job (with filters).")] = False,
    name: NameOpt = None,
    group: GroupOpt = None,
    id_prefix: PrefixOpt = None,
    error: ErrorOpt = None,
    message: MessageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete dead jobs matching the filters (or --all)."""
    where = make_filter(name, group, id_prefix, error, since, until, message)
    if not all_jobs and where.empty:
        raise typer.BadParameter("give filters or --all")
    app = ops_app(url)
    dead = app.queue(queue).dead_letters
    if dry_run:
        n = run(app, lambda: dead.count(where))
        say({"would_delete": n, "dry_run": True}, as_json, f"would delete {n} job(s)")
        return
    matched = run(app, lambda: dead.count(where))
    confirm(f"Delete {matched} dead job(s) of {queue!r}?", yes)
    with progress_bar("purging", matched > 50) as bar:
        n = run(app, lambda: dead.purge(where, progress=bar))
    say({"deleted": n}, as_json, f"deleted {n} job(s)")
