"""``corral jobs ls|show|find|cancel|retry|rm|promote|priority``."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from corral.cli._common import (
    DryRunOption,
    Exit,
    JsonOption,
    QueueArg,
    UrlOption,
    YesOption,
    ago,
    confirm,
    console,
    fail,
    make_filter,
    ops_app,
    print_json,
    run,
    say,
    short,
    timing,
)
from corral.cli._help import CorralTyper
from corral.cli._show import print_job
from corral.cli._tables import Column, print_table
from corral.engine import LISTABLE
from corral.filters import JobFilter
from corral.models import JobSummary
from corral.settings import parse_duration

jobs_cli = CorralTyper(help="Find, inspect and act on jobs.")

IdArg = Annotated[str, typer.Argument(metavar="JOB_ID", help="Job id.")]
NameOpt = Annotated[str | None, typer.Option("--name", help="Job name.")]
GroupOpt = Annotated[str | None, typer.Option("--group", help="Group (tenant).")]
PrefixOpt = Annotated[
    str | None, typer.Option("--id-prefix", metavar="PREFIX", help="Job id prefix.")
]
ErrorOpt = Annotated[
    str | None,
    typer.Option(
        "--error",
        metavar="TYPE",
        help="Last error's type or a base class of it: TimeoutError also finds JobTimeout.",
    ),
]
MessageOpt = Annotated[
    str | None,
    typer.Option(
        "--message", metavar="TEXT", help="Text in the last error's message (any case), e.g. 429."
    ),
]
SinceOpt = Annotated[
    str | None,
    typer.Option(
        "--since", metavar="WHEN", help="Ended (or created) after: 1h for an hour ago, or ISO."
    ),
]
UntilOpt = Annotated[
    str | None,
    typer.Option(
        "--until", metavar="WHEN", help="Ended (or created) before: 30m for 30 minutes ago, or ISO."
    ),
]
LimitOpt = Annotated[int, typer.Option("--limit", min=1, metavar="N", help="List at most N.")]
OffsetOpt = Annotated[int, typer.Option("--offset", min=0, metavar="N", help="Skip the first N.")]


SUMMARY_COLUMNS = (
    Column("id"),
    Column("name"),
    Column("state"),
    Column("group", floor=6),
    Column("attempt", justify="right"),
    Column("when"),
    Column("error", floor=10),
)


def print_summaries(title: str, jobs: list[JobSummary], empty: str) -> None:
    """A listing of jobs, one line each, ids whole (see ``_tables``)."""
    if not jobs:
        console.print(empty)
        return
    rows = []
    for j in jobs:
        when = timing(j) or ago(j.finished_at or j.started_at or j.created_at)
        kind = (j.error_type or "").rsplit(".", 1)[-1]  # the class, not its module: narrow
        err = f"{kind}: {short(j.error_message, 200)}" if kind else ""
        if j.dead_reason:
            err = f"[{j.dead_reason}] {err}"
        attempt = f"{j.attempt}/{j.max_attempts}"
        rows.append((j.id, j.name, j.state, j.group or "", attempt, when, err))
    print_table(console, title, SUMMARY_COLUMNS, rows)


def outcome(result: dict[str, Any], as_json: bool, done: str, not_done: str) -> None:
    """Report a one-job action; exit NOT_DONE when the job was not in a state for it (an
    unknown queue or job has already exited NOT_FOUND)."""
    ok = all(v is not False for v in result.values())
    say(result, as_json, done if ok else not_done)
    if not ok:
        raise typer.Exit(Exit.NOT_DONE)


@jobs_cli.command("ls")
def list_jobs(
    queue: QueueArg,
    state: Annotated[
        str | None,
        typer.Option(
            metavar="STATE", help="One of " + ", ".join(LISTABLE) + " (default: waiting)."
        ),
    ] = None,
    running_longer: Annotated[
        str | None,
        typer.Option(
            "--running-longer",
            metavar="AGE",
            help="Active jobs whose attempt started longer ago than AGE (e.g. 1h): stuck ones.",
        ),
    ] = None,
    limit: LimitOpt = 20,
    offset: OffsetOpt = 0,
    oldest: Annotated[bool, typer.Option("--oldest", help="Oldest first.")] = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """One page of QUEUE's jobs in a state, newest first."""
    span = parse_duration(running_longer) if running_longer else None
    state = state or ("active" if span is not None else "waiting")
    if state not in LISTABLE:
        raise typer.BadParameter(f"--state must be one of {', '.join(LISTABLE)}")
    if span is not None and state != "active":
        raise typer.BadParameter("--running-longer lists active jobs: use it with --state active")
    app = ops_app(url)
    jobs = run(
        app,
        lambda: app.queue(queue).jobs(
            state, offset=offset, limit=limit, newest_first=not oldest, running_longer=span
        ),
    )
    if as_json:
        print_json([j.to_dict() for j in jobs])
    else:
        longer = f" running longer than {running_longer}" if span is not None else ""
        print_summaries(f"{queue}: {state}{longer}", jobs, f"no {state} jobs{longer}")


@jobs_cli.command()
def show(
    queue: QueueArg, job_id: IdArg, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Everything about one job, with full tracebacks and its log."""
    print_job(url, queue, job_id, as_json)


@jobs_cli.command()
def find(
    queue: QueueArg,
    name: NameOpt = None,
    group: GroupOpt = None,
    id_prefix: PrefixOpt = None,
    error: ErrorOpt = None,
    message: MessageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    state: Annotated[
        list[str] | None,
        typer.Option(
            "--state", metavar="STATE", help="Only this state (repeat); default: every state."
        ),
    ] = None,
    limit: LimitOpt = 50,
    offset: OffsetOpt = 0,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Jobs by name, group, id prefix, error type or message, and time range."""
    where = make_filter(name, group, id_prefix, error, since, until, message)
    states = tuple(state or LISTABLE)
    bad = [s for s in states if s not in LISTABLE]
    if bad:
        raise typer.BadParameter(f"unknown state(s) {bad}; use {', '.join(LISTABLE)}")
    app = ops_app(url)
    jobs = run(app, lambda: app.queue(queue).find(where, states=states, limit=limit, offset=offset))
    if as_json:
        print_json([j.to_dict() for j in jobs])
    else:
        print_summaries(f"{queue}: found", jobs, "no matching jobs")


@jobs_cli.command()
def cancel(
    queue: QueueArg,
    job_id: Annotated[
        str | None, typer.Argument(metavar="JOB_ID", help="Job id (or use --group/--name).")
    ] = None,
    group: GroupOpt = None,
    name: NameOpt = None,
    reason: Annotated[str, typer.Option(metavar="TEXT", help="Why; kept with the job.")] = "",
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Cancel one job, or every pending/running job of a group or a name."""
    app = ops_app(url)
    q = app.queue(queue)
    if job_id:
        info = run(app, lambda: q.get(job_id))
        what = f"job {job_id} ({info.name}, {info.state})"
        if info.state.terminal:  # nothing to cancel: no question to ask
            say({"id": job_id, "outcome": "ended"}, as_json, f"{what}: already ended")
            raise typer.Exit(Exit.NOT_DONE)
        if dry_run:
            result: dict[str, Any] = {"id": job_id, "state": info.state, "dry_run": True}
            say(result, as_json, f"would cancel {what}")
            return
        confirm(f"Cancel {what}?", yes)
        outcome = run(app, lambda: q.cancel(job_id, reason=reason))
        result = {"id": job_id, "outcome": outcome}
        say(result, as_json, f"{job_id}: {outcome}")
        if outcome == "ended":
            raise typer.Exit(Exit.NOT_DONE)
        return
    if not group and not name:
        raise typer.BadParameter("give a job id, --group or --name")
    where = JobFilter(group=group, name=name)
    states = ("waiting", "delayed", "active")
    matched = run(app, lambda: q.find(where, states=states, limit=10**9))
    if dry_run:
        result = {"would_cancel": len(matched), "dry_run": True}
        say(result, as_json, f"would cancel {len(matched)} job(s)")
        return
    confirm(f"Cancel {len(matched)} job(s) of {queue!r}?", yes)
    n = run(app, lambda: q.cancel_where(where, reason=reason))
    say({"cancelled": n}, as_json, f"cancelled {n} job(s)")


@jobs_cli.command()
def retry(
    queue: QueueArg, job_id: IdArg, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Run a dead (failed or cancelled) job again now."""
    app = ops_app(url)
    ok = run(app, lambda: app.queue(queue).retry(job_id))
    outcome(
        {"id": job_id, "retried": ok},
        as_json,
        f"{job_id}: retrying",
        f"{job_id}: not dead, nothing to retry",
    )


@jobs_cli.command("rm")
def remove(
    queue: QueueArg,
    job_id: IdArg,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete a job that is not running (cancel a running one)."""
    app = ops_app(url)
    q = app.queue(queue)
    info = run(app, lambda: q.get(job_id))
    what = f"job {job_id} ({info.name}, {info.state})"
    if info.state == "active":
        raise fail(f"{what} is running: cancel it instead")
    if dry_run:
        result = {"id": job_id, "state": info.state, "dry_run": True}
        say(result, as_json, f"would delete {what}")
        return
    confirm(f"Delete {what}?", yes)
    run(app, lambda: q.remove(job_id))
    say({"id": job_id, "removed": True}, as_json, f"{job_id}: removed")


@jobs_cli.command()
def promote(
    queue: QueueArg, job_id: IdArg, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """Run a delayed job now."""
    app = ops_app(url)
    ok = run(app, lambda: app.queue(queue).promote(job_id))
    outcome(
        {"id": job_id, "promoted": ok}, as_json, f"{job_id}: promoted", f"{job_id}: not delayed"
    )


@jobs_cli.command()
def priority(
    queue: QueueArg,
    job_id: IdArg,
    value: Annotated[
        int, typer.Argument(metavar="PRIORITY", help="New priority, 0..2000 (lower runs sooner).")
    ],
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a waiting or delayed job's priority."""
    app = ops_app(url)
    ok = run(app, lambda: app.queue(queue).set_priority(job_id, value))
    outcome(
        {"id": job_id, "priority": value, "changed": ok},
        as_json,
        f"{job_id}: priority {value}",
        f"{job_id}: not waiting or delayed",
    )
