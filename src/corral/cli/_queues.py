"""``corral queue ls|create|pause|resume|limit|wait-idle|drain|clean|obliterate``."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Annotated

import typer

from corral.cli._common import (
    DryRunOption,
    Exit,
    JsonOption,
    QueueArg,
    UrlOption,
    YesOption,
    confirm,
    err_console,
    fail,
    ops_app,
    progress_bar,
    run,
    say,
)
from corral.cli._help import CorralTyper
from corral.cli._worker import info
from corral.filters import JobFilter
from corral.models import QueueCounts
from corral.settings import describe_span, parse_duration

queue_cli = CorralTyper(help="See and steer queues.")
queue_cli.command(
    "ls", help="Queues with their job counts per state, and whether paused (also `corral info`)."
)(info)


@queue_cli.command()
def create(queue: QueueArg, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Declare QUEUE before any job is enqueued to it (nothing else creates a queue)."""
    app = ops_app(url)
    run(app, lambda: app.queue(queue).create())
    say({"queue": queue, "created": True}, as_json, f"{queue}: created")


@queue_cli.command()
def pause(queue: QueueArg, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Stop workers claiming from QUEUE (running jobs finish)."""
    app = ops_app(url)
    run(app, lambda: app.queue(queue).pause())
    say({"queue": queue, "paused": True}, as_json, f"{queue}: paused")


@queue_cli.command()
def resume(queue: QueueArg, url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Let workers claim from QUEUE again."""
    app = ops_app(url)
    run(app, lambda: app.queue(queue).resume())
    say({"queue": queue, "paused": False}, as_json, f"{queue}: resumed")


@queue_cli.command("wait-idle")
def wait_idle(
    queue: QueueArg,
    timeout: Annotated[
        str | None,
        typer.Option(
            metavar="AGE", help="Give up after this long (e.g. 10m), exit 5; default: no limit."
        ),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Wait until no job of QUEUE is running (after `corral queue pause`), then exit 0."""
    limit_span = parse_duration(timeout) if timeout else None
    app = ops_app(url)
    began = time.monotonic()
    last: list[QueueCounts] = []

    def show(counts: QueueCounts) -> None:  # a line when the number changes: fine in a log too
        if not last and not counts.paused and counts.active:
            err_console.print(f"note: {queue} is not paused: workers go on claiming its jobs")
        if not last or counts.active != last[0].active:
            waited = describe_span(timedelta(seconds=round(time.monotonic() - began)))
            err_console.print(f"{queue}: {counts.active} job(s) running ({waited} waited)")
        last[:] = [counts]

    idle = run(app, lambda: app.queue(queue).wait_idle(timeout=limit_span, on_poll=show))
    waited_s = round(time.monotonic() - began, 1)
    if not idle:
        running = last[0].active if last else 0
        raise fail(
            f"{queue}: {running} job(s) still running after {timeout}; see them with "
            f"`corral jobs ls {queue} --state active --oldest`",
            Exit.TIMED_OUT,
        )
    say({"queue": queue, "idle": True, "waited_s": waited_s}, as_json, f"{queue}: idle")


@queue_cli.command()
def limit(
    queue: QueueArg,
    max_jobs: Annotated[
        int | None,
        typer.Option(
            "--max-jobs",
            min=0,
            metavar="N",
            help="Refuse enqueues past N waiting + delayed jobs (QueueFull); 0 removes the cap.",
        ),
    ] = None,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show or set QUEUE's cap on waiting + delayed jobs."""
    app = ops_app(url)
    q = app.queue(queue)

    async def work() -> tuple[int, int | None]:
        counts = await q.counts()  # first: an unknown queue is refused, not created
        if max_jobs is not None:
            await q.set_max_jobs(max_jobs)
        return counts.waiting + counts.delayed, await q.max_jobs()

    pending, cap = run(app, work)
    now = f"now {pending} waiting or delayed"
    text = (
        f"{queue}: at most {cap} jobs waiting or delayed ({now})"
        if cap
        else f"{queue}: no cap ({now})"
    )
    say({"queue": queue, "max_jobs": cap, "waiting_or_delayed": pending}, as_json, text)


@queue_cli.command()
def drain(
    queue: QueueArg,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete every waiting and delayed job of QUEUE (running jobs finish)."""
    app = ops_app(url)
    q = app.queue(queue)
    counts = run(app, q.counts)
    doomed = counts.waiting + counts.delayed
    if dry_run:
        result = {"queue": queue, "would_delete": doomed, "dry_run": True}
        say(result, as_json, f"would delete {doomed} job(s)")
        return
    confirm(f"Delete {doomed} waiting/delayed job(s) of {queue!r}?", yes)
    with progress_bar("draining", doomed > 100) as bar:
        app = ops_app(url)
        deleted = run(app, lambda: app.queue(queue).drain(progress=bar))
    say({"queue": queue, "deleted": deleted}, as_json, f"{queue}: deleted {deleted} job(s)")


@queue_cli.command()
def clean(
    queue: QueueArg,
    state: Annotated[str, typer.Option(metavar="STATE", help="completed or dead.")] = "completed",
    older_than: Annotated[
        str, typer.Option(metavar="AGE", help="Finished longer ago than this, e.g. 1h, 7d.")
    ] = "1h",
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete completed (or dead) jobs that finished more than --older-than ago."""
    age = parse_duration(older_than)
    if state not in ("completed", "dead"):
        raise typer.BadParameter("--state must be completed or dead")
    app = ops_app(url)
    where = JobFilter(until=datetime.now(UTC) - age)
    found = run(app, lambda: app.queue(queue).find(where, states=(state,), limit=10**9))
    if dry_run:
        result = {"queue": queue, "state": state, "would_delete": len(found), "dry_run": True}
        say(result, as_json, f"would delete {len(found)} {state} job(s)")
        return
    confirm(f"Delete {len(found)} {state} job(s) of {queue!r} older than {older_than}?", yes)
    with progress_bar("cleaning", True) as bar:
        deleted = run(app, lambda: app.queue(queue).clean(state, age, progress=bar))
    say(
        {"queue": queue, "state": state, "deleted": deleted},
        as_json,
        f"{queue}: deleted {deleted} {state} job(s)",
    )


@queue_cli.command()
def obliterate(
    queue: QueueArg,
    force: Annotated[bool, typer.Option("--force", help="Even with running jobs.")] = False,
    yes: YesOption = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Delete QUEUE and everything in it (refused while jobs run, unless --force)."""
    app = ops_app(url)
    counts = run(app, app.queue(queue).counts)
    total = counts.waiting + counts.delayed + counts.active + counts.completed + counts.dead
    if dry_run:
        result = {"queue": queue, "would_delete_jobs": total, "dry_run": True}
        say(result, as_json, f"would delete {queue} ({total} jobs)")
        return
    confirm(f"Delete queue {queue!r} and its {total} job(s)?", yes)
    app = ops_app(url)
    keys = run(app, lambda: app.queue(queue).obliterate(force=force))
    say({"queue": queue, "deleted_keys": keys}, as_json, f"{queue}: obliterated ({keys} keys)")
