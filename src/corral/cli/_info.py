"""``corral info`` (``corral queue ls``): every queue with its counts per state, printed once or,
with ``--watch``, refreshed in place until Ctrl-C."""

from __future__ import annotations

import asyncio
import dataclasses
import signal
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from corral.app import App
from corral.cli._common import console
from corral.cli._tables import Column, fitted_table, print_table
from corral.errors import CorralError

COUNTS = ("waiting", "delayed", "active", "completed", "dead")
COLUMNS = (Column("queue"), *(Column(c, justify="right") for c in COUNTS), Column("paused"))


async def queue_rows(app: App) -> list[dict[str, Any]]:
    engine = await app.engine()
    out = []
    for name in await engine.queues():
        counts = dataclasses.asdict(await engine.counts(name))
        out.append({"queue": name, **counts})
    return out


def _cells(rows: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [row["queue"], *(str(row[c]) for c in COUNTS), "yes" if row["paused"] else ""]
        for row in rows
    ]


def print_queues(rows: list[dict[str, Any]]) -> None:
    if rows:
        print_table(console, "Corral queues", COLUMNS, _cells(rows))
    else:
        console.print("no queues yet")


def queues_table(rows: list[dict[str, Any]], title: str) -> RenderableType:
    if not rows:
        return Text("no queues yet")
    table, _fits = fitted_table(console, title, COLUMNS, _cells(rows))
    return table


async def watch(app: App, interval: float) -> None:
    """Refresh the table every ``interval`` seconds until SIGINT (Ctrl-C) or SIGTERM, which end
    it as a normal exit. A failed refresh is shown and tried again at the next tick; only the
    first one is an error (a wrong URL should not leave an empty screen)."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        last = await _view(app, interval)
        with Live(last, console=console, auto_refresh=False, transient=False) as live:
            while True:
                try:
                    await asyncio.wait_for(stop.wait(), interval)
                    break
                except TimeoutError:
                    pass
                try:
                    last = view = await _view(app, interval)
                except CorralError as exc:  # the last good view stays, with what went wrong
                    failed = Text(f"{_now()}: {exc} (retrying every {interval:g}s)", style="red")
                    view = Group(last, failed)
                live.update(view, refresh=True)
        if not console.is_terminal:  # Live ends its last view with a newline on terminals only
            console.line()
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


async def _view(app: App, interval: float) -> RenderableType:
    rows = await queue_rows(app)
    alive = len(await app.workers())
    where = (await app.engine()).where  # redacted: no password on the screen
    title = f"Corral queues at {_now()}, every {interval:g}s (Ctrl-C to stop)"
    footer = Text.from_markup(f"{alive} worker(s) alive   [dim]{escape(where)}[/]")
    return Group(queues_table(rows, title), footer)


def _now() -> str:
    return datetime.now().strftime("%H:%M:%S")
