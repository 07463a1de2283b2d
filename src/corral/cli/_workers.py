"""``corral workers``: the live workers, from the registry their heartbeats keep."""

from __future__ import annotations

from corral.cli._common import (
    JsonOption,
    UrlOption,
    ago,
    console,
    ops_app,
    print_json,
    run,
    to_plain,
)
from corral.cli._show import plain
from corral.cli._tables import Column, print_table

COLUMNS = (
    Column("worker"),
    Column("host", floor=6),
    Column("pid", justify="right"),
    Column("queues", floor=6),
    Column("running", justify="right"),
    Column("started"),
    Column("heartbeat"),
    Column("version"),
)


def workers(url: UrlOption = None, as_json: JsonOption = False) -> None:
    """Live workers: host, pid, queues, running jobs, when they started and last reported.

    A worker reports every lease/3 (10 s by default); one that missed three reports is gone
    and no longer listed. A worker that exits removes itself."""
    app = ops_app(url)
    found = run(app, app.workers)
    if as_json:
        print_json([to_plain(w) for w in found])
        return
    if not found:
        console.print("no live workers")
        return
    rows = [
        (
            w.id,
            w.host,
            str(w.pid),
            ",".join(w.queues),
            f"{w.running}/{w.concurrency}",
            ago(w.started_at),
            ago(w.last_heartbeat),
            w.version,
        )
        for w in found
    ]
    print_table(console, f"Corral workers ({len(found)} alive)", COLUMNS, rows)
    busy = [w for w in found if w.jobs]
    if busy:  # job ids whole, one worker per line, rather than cut to fit a column
        console.print()
        plain("running jobs (at the last heartbeat):")
        for w in busy:
            more = w.running - len(w.jobs)
            plain(f"  {w.id}: {' '.join(w.jobs)}" + (f" (and {more} more)" if more > 0 else ""))
