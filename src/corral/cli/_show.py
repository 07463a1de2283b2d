"""``jobs show`` and ``dlq show``: one job, for people or as JSON.

For people: one fact per line, nothing boxed, so a payload can be copied whole and pasted
into ``--payload``/``--patch`` (it is printed as JSON, on one line however long), and each
error's traceback starts at the user's code (``_tracebacks``). As JSON: the read model with
every time in ISO 8601, replays' and cancellation's too (stored as epoch milliseconds).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from rich.markup import escape

from corral.cli._common import ago, console, ops_app, print_json, run, span, to_plain
from corral.cli._tracebacks import trim_corral_frames
from corral.models import JobInfo

LOG_LINES = 50  # the last ones shown; --json has them all


def print_job(
    url: str | None, queue: str, job_id: str, as_json: bool, *, dead_only: bool = False
) -> None:
    app = ops_app(url)

    async def fetch() -> tuple[JobInfo, list[str]]:
        q = app.queue(queue)
        info = await (q.dead_letters.get(job_id) if dead_only else q.get(job_id))
        return info, await q.logs(job_id)

    info, logs = run(app, fetch)
    if as_json:
        print_json(job_json(info, logs))
    else:
        show_job(info, logs)


def job_json(info: JobInfo, logs: list[str]) -> dict[str, Any]:
    """The read model as JSON, every time in ISO 8601 (documented in docs/operations.md)."""
    ran = info.running_for()
    running_for = None if ran is None else round(ran.total_seconds(), 3)
    return {**to_plain(info), "running_for": running_for, "logs": logs}


def as_json_text(value: Any) -> str:
    """JSON a shell can paste back: ``{"order": "acme:1", "amount": 3}``."""
    return json.dumps(value, ensure_ascii=False, default=str)


def when(moment: datetime | None) -> str:
    if moment is None:
        return "-"
    return f"{ago(moment)} ({moment.isoformat(timespec='seconds')})"


def plain(text: str) -> None:
    """One line of data: not markup, not highlighted, never broken by Rich."""
    console.print(escape(text), soft_wrap=True, highlight=False)


def show_job(info: JobInfo, logs: list[str]) -> None:
    facts = [
        ("state", info.state + (f" ({info.dead_reason})" if info.dead_reason else "")),
        ("group", info.group or "-"),
        ("priority", str(info.priority)),
        (
            "attempt",
            f"{info.attempt}/{info.max_attempts} "
            f"(reschedules {info.reschedules}, stalls {info.stalls})",
        ),
        ("created", when(info.created_at)),
        ("started", when(info.started_at)),
        ("finished", when(info.finished_at)),
    ]
    if info.due_at is not None:  # delayed or backing off: when a worker may claim it
        facts.append(("due", when(info.due_at)))
    if info.lease_until is not None:
        ran = info.running_for()
        if ran is not None:
            facts.append(("running", f"for {span(ran.total_seconds())}"))
        if info.lease_until > datetime.now(UTC):
            lease = f"ends {when(info.lease_until)} unless its worker renews it"
        else:  # its worker is gone or stuck: any live worker's reaper hands it back
            lease = f"expired {when(info.lease_until)}"
        facts.append(("lease", lease))
    facts += [
        ("worker", info.worker or "-"),
        ("payload", as_json_text(info.payload)),
    ]
    if info.progress is not None:
        facts.append(("progress", as_json_text(info.progress)))
    if info.result is not None:
        facts.append(("result", as_json_text(info.result)))
    if info.cancellation:
        c = info.cancellation
        facts.append(("cancelled", f"by {c.by}, {when(c.at)}: {c.reason or '-'}"))
    for r in info.replays:
        edited = ", payload edited" if r.edited else ""
        facts.append(("replayed", f"{when(r.at)} by {r.by} (was {r.reason}){edited}"))
    plain(f"{info.name} {info.id} in queue {info.queue}")
    for name, value in facts:
        plain(f"  {name:<10} {value}")
    for err in info.errors:
        where = f" on {err.worker}" if err.worker else ""
        console.print()
        console.print(
            f"[red]{escape(f'attempt {err.attempt}, {when(err.at)}{where}: ')}"
            f"{escape(f'{err.type}: {err.message}')}[/]",
            soft_wrap=True,
        )
        if err.traceback:
            text, hidden = trim_corral_frames(err.traceback.rstrip())
            plain(text)
            if hidden:
                plain(f"({hidden} frame(s) of Corral's worker above the handler not shown; --json)")
    if logs:
        shown = logs[-LOG_LINES:]
        part = f", the last {len(shown)}" if len(shown) < len(logs) else ""
        console.print()
        plain(f"log ({len(logs)} lines{part}):")
        for entry in shown:
            plain(f"  {entry}")
