"""``corral groups ls|show|pause|resume|limit``: the groups (tenants) of a queue.

None of the changes deletes anything and each is undone by its opposite (``resume``,
``limit --reset``), so, like ``queue pause``, they do not ask; ``--dry-run`` says what would
change. Pausing or limiting a group the queue does not know yet is allowed (a tenant can be
held back before its first job) and said so; an unknown queue is refused (exit 1).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

import typer

from corral.cli._common import (
    DryRunOption,
    JsonOption,
    QueueArg,
    UrlOption,
    ago,
    console,
    fail,
    ops_app,
    print_json,
    run,
    say,
    to_plain,
)
from corral.cli._help import CorralTyper
from corral.cli._show import plain
from corral.cli._tables import Column, print_table
from corral.errors import ConfigError
from corral.groups import RateLimit, check_concurrency, check_weight
from corral.models import GroupState
from corral.options import check_group
from corral.settings import parse_duration

groups_cli = CorralTyper(help="See and steer the groups (tenants) of a queue.")

GroupArg = Annotated[str, typer.Argument(metavar="GROUP", help="Group name (tenant).")]

COLUMNS = (
    Column("group"),
    Column("state"),
    Column("waiting", justify="right"),
    Column("active", justify="right"),
    Column("concurrency", justify="right"),
    Column("rate"),
    Column("weight", justify="right"),
    Column("held until"),
)


def window(span: timedelta) -> str:
    """A rate window as ``--rate`` takes it: ``1s``, ``500ms``, ``5m``."""
    ms = round(span.total_seconds() * 1000)
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def rate_text(rate: RateLimit | None) -> str:
    return "-" if rate is None else f"{rate.limit}/{window(rate.per)}"


def parse_rate(text: str) -> RateLimit:
    """``N/WINDOW``: ``10/1s``, ``40/60s``, ``5/500ms``; ``10/s`` means ``10/1s``."""
    count, sep, span = text.partition("/")
    try:
        if not sep or not count.strip().isdigit():
            raise ConfigError("")
        span = span.strip()
        return RateLimit(int(count), parse_duration(span if span[:1].isdigit() else "1" + span))
    except ConfigError as exc:
        detail = f": {exc}" if str(exc) else ""
        raise ConfigError(
            f"--rate expects N/WINDOW, e.g. 10/1s or 40/60s, got {text!r}{detail}"
        ) from None


def limits(state: GroupState) -> dict[str, Any]:
    """What applies to the group now (its own settings, else the queue's)."""
    return {
        "concurrency": state.concurrency,
        "rate": None if state.rate is None else to_plain(state.rate),
        "weight": state.weight,
    }


def limits_text(state: GroupState) -> str:
    concurrency = "-" if state.concurrency is None else str(state.concurrency)
    weight = "1 (default)" if state.weight is None else f"{state.weight:g}"
    return f"concurrency {concurrency}, rate {rate_text(state.rate)}, weight {weight}"


def state_json(queue: str, state: GroupState) -> dict[str, Any]:
    return {"queue": queue, **to_plain(state), "state": state.state}


def occupancy(state: GroupState) -> str:
    return f"{state.waiting} waiting, {state.active} running"


@groups_cli.command("ls")
def list_groups(
    queue: QueueArg,
    limit: Annotated[int, typer.Option("--limit", min=1, metavar="N", help="List at most N.")] = 50,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """QUEUE's groups, by name: those with waiting or running jobs, paused ones and those with
    limits or a weight of their own."""
    app = ops_app(url)
    found = run(app, lambda: app.queue(queue).groups(limit=limit + 1))
    shown, more = found[:limit], len(found) > limit
    if as_json:
        print_json([state_json(queue, g) for g in shown])
        return
    if not shown:
        console.print(f"{queue}: no groups")
        return
    rows = [
        (
            g.group,
            g.state,
            str(g.waiting),
            str(g.active),
            "-" if g.concurrency is None else str(g.concurrency),
            rate_text(g.rate),
            "-" if g.weight is None else f"{g.weight:g}",
            ago(g.limited_until),
        )
        for g in shown
    ]
    print_table(console, f"{queue}: groups", COLUMNS, rows)
    if more:
        console.print(f"(the first {limit} groups by name; --limit for more)")


def _known_state(url: str | None, queue: str, group: str) -> tuple[GroupState, bool]:
    app = ops_app(url)
    handle = app.queue(queue).group(check_group(group))

    async def read() -> tuple[GroupState, bool]:
        return await handle.state(), await handle.exists()

    return run(app, read)


@groups_cli.command()
def show(
    queue: QueueArg, group: GroupArg, url: UrlOption = None, as_json: JsonOption = False
) -> None:
    """One group: its state, jobs, limits and weight."""
    state, known = _known_state(url, queue, group)
    if not known:
        raise fail(
            f"no group {group!r} in queue {queue!r}: no waiting or running jobs, not paused, "
            "no settings of its own",
            1,
        )
    if as_json:
        print_json(state_json(queue, state))
        return
    held = f", held until {ago(state.limited_until)}" if state.limited_until else ""
    plain(f"{group} in queue {queue}")
    plain(f"  state      {state.state}{held}")
    plain(f"  jobs       {occupancy(state)}")
    plain(f"  limits     {limits_text(state)}")


def _pause_or_resume(
    queue: str, group: str, pause: bool, dry_run: bool, url: str | None, as_json: bool
) -> None:
    state, known = _known_state(url, queue, group)
    verb = "pause" if pause else "resume"
    note = "" if known else " (the queue does not know it yet)"
    result: dict[str, Any] = {"queue": queue, "group": group, "paused": pause}
    result.update(waiting=state.waiting, active=state.active)
    if dry_run:
        say({**result, "dry_run": True}, as_json, f"would {verb} {group}{note}: {occupancy(state)}")
        return
    app = ops_app(url)
    handle = app.queue(queue).group(group)
    run(app, handle.pause if pause else handle.resume)
    done = "paused (its running jobs finish)" if pause else "resumed"
    say(result, as_json, f"{group}: {done}{note}; {occupancy(state)}")


@groups_cli.command()
def pause(
    queue: QueueArg,
    group: GroupArg,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Stop workers claiming GROUP's jobs (its running jobs finish; other groups go on)."""
    _pause_or_resume(queue, group, True, dry_run, url, as_json)


@groups_cli.command()
def resume(
    queue: QueueArg,
    group: GroupArg,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Let workers claim GROUP's jobs again."""
    _pause_or_resume(queue, group, False, dry_run, url, as_json)


@groups_cli.command("limit")
def set_limit(
    queue: QueueArg,
    group: GroupArg,
    concurrency: Annotated[
        int | None,
        typer.Option(metavar="N", help="At most N of its jobs running at once, across workers."),
    ] = None,
    rate: Annotated[
        str | None,
        typer.Option(metavar="N/WINDOW", help="At most N starts in any WINDOW, e.g. 40/60s."),
    ] = None,
    weight: Annotated[
        float | None,
        typer.Option(metavar="W", help="Its share of the turns: 2 serves it twice as often."),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option("--reset", help="Back to the queue's defaults (except what is given)."),
    ] = False,
    dry_run: DryRunOption = False,
    url: UrlOption = None,
    as_json: JsonOption = False,
) -> None:
    """Give GROUP its own concurrency, rate limit or weight, or --reset them."""
    if concurrency is None and rate is None and weight is None and not reset:
        raise typer.BadParameter("give --concurrency, --rate, --weight or --reset")
    check_concurrency(concurrency, "--concurrency")
    check_weight(weight)
    parsed = None if rate is None else parse_rate(rate)
    before, known = _known_state(url, queue, group)
    given = {
        "concurrency": concurrency,
        "rate": None if parsed is None else to_plain(parsed),
        "weight": weight,
    }
    changes = {name: value for name, value in given.items() if value is not None}
    removed = [name for name, value in given.items() if value is None] if reset else []
    result: dict[str, Any] = {"queue": queue, "group": group, "set": changes, "reset": removed}
    note = "" if known else " (the queue does not know it yet)"
    parts = [f"{name} {rate if name == 'rate' else value}" for name, value in changes.items()]
    if removed:
        parts.append(f"{', '.join(removed)} back to the queue's")
    wanted = ", ".join(parts)
    if dry_run:
        result.update(before=limits(before), dry_run=True)
        say(result, as_json, f"would set {group}{note}: {wanted}; now {limits_text(before)}")
        return
    app = ops_app(url)
    handle = app.queue(queue).group(group)

    async def apply() -> GroupState:
        await handle.set_limits(concurrency=concurrency, rate=parsed, weight=weight, reset=reset)
        return await handle.state()

    after = run(app, apply)
    result.update(before=limits(before), after=limits(after))
    say(result, as_json, f"{group}{note}: {limits_text(after)} (was {limits_text(before)})")
