"""``corral dlq ls|show|replay|purge``: the dead-letter queue, with filters."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
import typer
from rich.markup import escape

from corral.app import App
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
from corral.cli._help import CorralTyper
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
    print_summaries,
)
from corral.cli._show import print_job
from corral.cli._target import load_callable
from corral.dead_letters import DeadLetters, Edit, RejectedEdit
from corral.errors import ConfigError
from corral.filters import JobFilter
from corral.models import JobSummary

dlq_cli = CorralTyper(help="The dead-letter queue: inspect, replay, purge.")

ListedOpt = Annotated[
    int, typer.Option("--limit", min=1, metavar="N", help="With --dry-run: list the first N jobs.")
]


def dry_run_report(
    app: App, dead: DeadLetters, where: JobFilter, limit: int, edit: Edit | None = None
) -> tuple[int, list[JobSummary], tuple[RejectedEdit, ...]]:
    """What a replay or purge would touch: how many, the first ``limit`` of them, and (with
    an edit) the jobs whose edited payload would not validate."""

    async def look() -> tuple[int, list[JobSummary], tuple[RejectedEdit, ...]]:
        listed = await dead.jobs(where, limit=limit)
        if edit is None:
            return await dead.count(where), listed, ()
        report = await dead.replay(where, dry_run=True, edit=edit)
        return report.matched, listed, report.rejected

    return run(app, look)


def say_dry_run(
    queue: str,
    verb: str,
    matched: int,
    listed: list[JobSummary],
    rejected: tuple[RejectedEdit, ...],
    as_json: bool,
) -> None:
    """``would replay 6 job(s)`` with the jobs listed (``--json``: ``would_replay``, ``jobs``,
    and with an edit ``rejected``)."""
    n = matched - len(rejected)
    result: dict[str, Any] = {f"would_{verb}": n, "dry_run": True}
    result["jobs"] = [j.to_dict() for j in listed]
    if rejected:
        result["rejected"] = to_plain(rejected)
    if as_json:
        print_json(result)
        return
    if listed:
        print_summaries(f"{queue}: dead letters", listed, "")
    shown = f" (listed: the first {len(listed)}; --limit for more)" if len(listed) < matched else ""
    console.print(f"would {verb} {n} job(s){shown}", soft_wrap=True)
    if rejected:
        console.print(
            escape(
                f"{len(rejected)} would stay dead, their edit does not validate:\n"
                + rejected_lines(rejected)
            ),
            soft_wrap=True,
        )


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
        print_summaries(f"{queue}: dead letters", jobs, "no dead jobs")


@dlq_cli.command()
def show(
    queue: QueueArg, job_id: IdArg, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """One dead job with its full error history and tracebacks."""
    print_job(url, queue, job_id, as_json, dead_only=True)


def parse_edit(
    payload: str | None, patch: str | None, edit: str | None, app_target: str | None
) -> Edit | None:
    """The edit a replay makes to payloads (``--payload`` replaces one whole, ``--patch``
    merges, ``--edit`` calls the user's function). Each edited payload is validated against
    its job's model, so any of them needs the App that defines the jobs."""
    given = [
        name for name, v in (("--payload", payload), ("--patch", patch), ("--edit", edit)) if v
    ]
    if len(given) > 1:
        raise ConfigError(f"give one of --payload, --patch and --edit, not {' and '.join(given)}")
    if not given:
        return None
    if not app_target:
        raise ConfigError(f"{given[0]} needs --app MODULE:APP to validate the edited payloads")
    if edit:
        return load_callable(edit, "--edit")
    text = payload if payload is not None else patch
    assert text is not None
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise ConfigError(f"{given[0]} is not JSON: {exc}") from None
    if not isinstance(value, dict):
        raise ConfigError(f"{given[0]} must be a JSON object, got {type(value).__name__}")
    return value if patch is not None else _replaced_by(value)


def _replaced_by(value: dict[str, Any]) -> Edit:
    def whole(_old: dict[str, Any]) -> dict[str, Any]:
        return value

    return whole


def rejected_lines(rejected: tuple[RejectedEdit, ...]) -> str:
    return "\n".join(f"  {r.id}: {r.message}" for r in rejected)


@dlq_cli.command()
def replay(
    queue: QueueArg,
    job_id: Annotated[
        str | None, typer.Argument(metavar="JOB_ID", help="One job id (or use filters/--all).")
    ] = None,
    all_jobs: Annotated[bool, typer.Option("--all", help="Every dead job (with filters).")] = False,
    name: NameOpt = None,
    group: GroupOpt = None,
    id_prefix: PrefixOpt = None,
    error: ErrorOpt = None,
    message: MessageOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    payload: Annotated[
        str | None,
        typer.Option(
            "--payload", metavar="JSON", help="A whole new payload, for one job; needs --app."
        ),
    ] = None,
    patch: Annotated[
        str | None,
        typer.Option(
            "--patch",
            metavar="JSON",
            help="JSON merge patch (RFC 7386) applied to each job's payload; needs --app.",
        ),
    ] = None,
    edit: Annotated[
        str | None,
        typer.Option(
            "--edit",
            metavar="MODULE:FUNCTION",
            help="MODULE:FUNCTION taking a payload dict, returning the new one; needs --app.",
        ),
    ] = None,
    rate: Annotated[
        float | None, typer.Option("--rate", metavar="N", help="At most N jobs per second.")
    ] = None,
    limit: ListedOpt = 20,
    app_target: AppOption = None,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Send dead jobs back to waiting with fresh attempts (recording who replayed them),
    optionally with edited payloads, each validated against its job's model."""
    where = make_filter(name, group, id_prefix, error, since, until, message)
    if payload is not None and not job_id:
        raise typer.BadParameter("--payload replaces one job's payload: give its id (or --patch)")
    if not job_id and not all_jobs and where.empty:
        raise typer.BadParameter("give a job id, filters, or --all")
    change = parse_edit(payload, patch, edit, app_target)
    app = ops_app(url, app_target)
    dead = app.queue(queue).dead_letters
    if job_id:
        _replay_one(app, dead, job_id, change, dry_run, as_json)
        return
    if dry_run:
        say_dry_run(queue, "replay", *dry_run_report(app, dead, where, limit, change), as_json)
        return
    matched = run(app, lambda: dead.count(where))
    edited = " with edited payloads" if change is not None else ""
    confirm(f"Replay {matched} dead job(s) of {queue!r}{edited}?", yes)
    done = [0, matched]  # replayed so far, of how many: said if Ctrl-C stops the replay

    def interrupted() -> str:
        if as_json:
            print_json({"replayed": done[0], "matched": done[1], "interrupted": True})
        return f"replayed {done[0]} of {done[1]} job(s); the others are still dead"

    with progress_bar("replaying", matched > 50) as bar:

        def step(replayed: int, total: int) -> None:
            done[:] = [replayed, total]
            bar(replayed, total)

        report = run(
            app,
            lambda: dead.replay(where, rate=rate, progress=step, edit=change),
            interrupted=interrupted,
        )
    text = f"replayed {report.replayed} job(s)"
    if report.rejected:
        text += (
            f"; {len(report.rejected)} stay dead, their edit does not validate:\n"
            + rejected_lines(report.rejected)
        )
    say(to_plain(report), as_json, text)
    if report.rejected:
        raise typer.Exit(Exit.USAGE)


def _replay_one(
    app: App, dead: DeadLetters, job_id: str, change: Edit | None, dry_run: bool, as_json: bool
) -> None:
    """``dlq replay QUEUE JOB_ID``: one job, maybe edited (an edit that does not validate
    exits USAGE naming the field; the job stays dead)."""

    async def act() -> bool:
        raw = None if change is None else await dead.edited(job_id, change)
        if dry_run:
            await dead.get(job_id)  # dead, or JobNotFound
            return True
        return await dead.replay_one(job_id, payload=raw)

    ok = run(app, act)
    if dry_run:
        say({"id": job_id, "would_replay": 1, "dry_run": True}, as_json, f"would replay {job_id}")
        return
    say({"id": job_id, "replayed": ok}, as_json, f"{job_id}: {'replayed' if ok else 'not dead'}")
    if not ok:
        raise typer.Exit(Exit.NOT_DONE)


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
    limit: ListedOpt = 20,
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
        say_dry_run(queue, "delete", *dry_run_report(app, dead, where, limit), as_json)
        return
    matched = run(app, lambda: dead.count(where))
    confirm(f"Delete {matched} dead job(s) of {queue!r}?", yes)
    with progress_bar("purging", matched > 50) as bar:
        n = run(app, lambda: dead.purge(where, progress=bar))
    say({"deleted": n}, as_json, f"deleted {n} job(s)")
