"""``corral demo``: shop webhooks fanned out to jobs, run by a worker, with a live view.

Modelled on the teams we build for: a shop webhook must be answered in well under 500 ms, so it
only enqueues a recipe execution; notifications go out through a rate-limited provider (HTTP 429
becomes ``Retry(delay=...)``); a CPU-heavy report runs in a child process and reports progress.
Some recipe runs fail transiently and are retried; a webhook for an unknown event is fatal.
Failures are derived from the input (not random), so every run tells the same story.

The demo writes under its own key prefix (``corral-demo-<random>``), never into the queues of
the server's users (its queue names are the docs' examples), and deletes its queues when it
ends, also on an error or Ctrl-C.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
import zlib
from datetime import timedelta
from typing import Literal

from pydantic import BaseModel
from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from corral.app import App
from corral.context import current_job
from corral.engine import Engine
from corral.errors import Fatal, Retry
from corral.handle import JobHandle
from corral.loop import run as run_loop
from corral.models import QueueCounts
from corral.options import Priority
from corral.retry import Exponential, RetryPolicy
from corral.settings import Settings
from corral.worker import Worker
from corral.worker.stats import WorkerStats

QUEUES = ("notifications", "recipes", "reports")
KNOWN_EVENTS = ("orders/create", "orders/paid", "products/update", "customers/create")
SHOPS = ("acme.myshopify.com", "bolt.myshopify.com", "cedar.myshopify.com", "dune.myshopify.com")


class RecipeRun(BaseModel):
    shop: str
    event: str
    resource_id: str


class Notification(BaseModel):
    user_id: str
    channel: Literal["email", "sms", "push"]
    template: str


class ReportRequest(BaseModel):
    tenant: str
    report_type: str
    rows: int


def _roll(*parts: object) -> int:
    return zlib.crc32("|".join(map(str, parts)).encode()) % 100


async def execute_recipe(run: RecipeRun) -> dict[str, object]:
    """Run a shop's automation recipe for one webhook event."""
    job = current_job()
    if run.event not in KNOWN_EVENTS:
        raise Fatal(f"no recipe handles event {run.event!r}")
    await asyncio.sleep(0.002 + _roll(run.resource_id) / 10_000)
    if job.attempt == 1 and _roll(run.resource_id, "api") < 12:
        raise ConnectionError(f"shop API returned 502 for {run.shop}")
    if _roll(run.resource_id, "broken") < 1:
        raise ValueError(f"recipe for {run.resource_id} has a broken condition")
    return {"shop": run.shop, "actions": 1 + _roll(run.resource_id) % 4}


def send_notification(note: Notification) -> str:
    """Send through a provider that answers 429 when pushed too hard."""
    time.sleep(0.003)
    if current_job().reschedules == 0 and _roll(note.user_id, "429") < 10:
        raise Retry(
            delay=timedelta(milliseconds=150), message="provider said 429 Too Many Requests"
        )
    return f"{note.channel}:{note.user_id}"


def render_report(req: ReportRequest) -> dict[str, object]:
    """CPU-bound: hashes rows in a child process, reporting progress as it goes."""
    digest = hashlib.sha256()
    steps = 5
    for step in range(steps):
        for row in range(req.rows // steps):
            digest.update(f"{req.tenant}:{step}:{row}".encode())
        current_job().progress(int((step + 1) * 100 / steps))
    return {"tenant": req.tenant, "rows": req.rows, "checksum": digest.hexdigest()[:12]}


def build_app(settings: Settings | None = None) -> App:
    app = App(settings or Settings.from_env(), name="corral-demo")
    fast_retry = RetryPolicy(
        attempts=3, backoff=Exponential(timedelta(milliseconds=40), jitter=0.2)
    )
    app.job(
        queue="recipes", group=lambda run: run.shop, retry=fast_retry, timeout=timedelta(seconds=10)
    )(execute_recipe)
    app.job(queue="notifications", priority=Priority.HIGH, retry=fast_retry)(send_notification)
    app.job(queue="reports", mode="process", priority=Priority.LOW, timeout=timedelta(seconds=60))(
        render_report
    )
    return app


async def _simulate_webhooks(
    app: App, webhooks: int
) -> tuple[list[JobHandle[object]], list[float]]:
    recipes = app.registry["execute_recipe"]
    notes = app.registry["send_notification"]
    reports = app.registry["render_report"]
    handles: list[JobHandle[object]] = []
    latencies: list[float] = []
    for i in range(webhooks):
        shop = SHOPS[i % len(SHOPS)]
        event = KNOWN_EVENTS[i % len(KNOWN_EVENTS)] if i != 7 else "app/uninstalled"
        started = time.perf_counter()
        handles.append(
            await recipes.enqueue(RecipeRun(shop=shop, event=event, resource_id=f"gid://{i}"))
        )
        latencies.append(time.perf_counter() - started)
        if i % 3 == 0:
            note = Notification(
                user_id=f"u{i}", channel=("email", "sms", "push")[i % 3], template="order"
            )
            handles.append(await notes.enqueue(note))
    for tenant in ("acme", "bolt", "cedar"):
        handles.append(
            await reports.enqueue(ReportRequest(tenant=tenant, report_type="sales", rows=60_000))
        )
    return handles, latencies


def _view(counts: dict[str, QueueCounts], progress: Progress) -> Group:
    table = Table(title="queues", expand=False)
    for col in ("queue", "waiting", "delayed", "active", "completed", "dead"):
        table.add_column(col, justify="left" if col == "queue" else "right")
    for q, c in counts.items():
        table.add_row(q, *(str(n) for n in (c.waiting, c.delayed, c.active, c.completed, c.dead)))
    return Group(table, progress)


async def _watch(
    engine: Engine,
    worker: Worker,
    task: asyncio.Task[WorkerStats],
    progress: Progress,
    bar: TaskID,
    console: Console,
    total: int,
) -> None:
    """The live view of the queues until the worker is done: it is stopped once every job
    ended (retries backing off are waited for, which a burst worker would not do), or once
    nothing is pending any more."""
    counts: dict[str, QueueCounts] = {}
    with Live(console=console, refresh_per_second=10, transient=False) as live:
        while True:
            for q in worker.queues:
                counts[q] = await engine.counts(q)
            finished = worker.stats.completed + worker.stats.dead
            progress.update(bar, completed=finished)
            live.update(_view(counts, progress))
            if finished >= total or not any(c.pending for c in counts.values()):
                worker.stop()
            if task.done():
                return
            await asyncio.wait([task], timeout=0.1)


async def _run(app: App, webhooks: int, concurrency: int, console: Console) -> int:
    async with app:
        engine = await app.engine()
        handles, latencies = await _simulate_webhooks(app, webhooks)
        total = len(handles)
        worker = Worker(
            app,
            list(QUEUES),
            concurrency=concurrency,
            weights={"notifications": 3, "recipes": 5, "reports": 1},
        )
        progress = Progress(
            TextColumn("jobs finished"), BarColumn(), TextColumn("{task.completed}/{task.total}")
        )
        bar = progress.add_task("jobs", total=total)
        started = time.perf_counter()
        task = asyncio.create_task(worker.run())
        try:
            await _watch(engine, worker, task, progress, bar, console, total)
        finally:  # Ctrl-C or an error: stop the worker before the connection closes under it
            if not task.done():
                worker.stop(force=True)
                await asyncio.wait([task], timeout=10)
        stats = await task
        elapsed = time.perf_counter() - started
        dead = []
        for h in handles:
            info = await h.info()
            if info.dead_reason:
                err = info.last_error
                dead.append(
                    (
                        info.name,
                        info.id,
                        info.dead_reason,
                        f"{err.type}: {err.message}" if err else "",
                    )
                )
        report = await handles[-1].info()

    latencies.sort()
    console.print()
    summary = Table(title="summary", show_header=False)
    summary.add_row("jobs enqueued", str(total))
    summary.add_row("completed", str(stats.completed))
    summary.add_row("failed attempts retried", str(stats.retried))
    summary.add_row("rescheduled (429)", str(stats.rescheduled))
    summary.add_row("dead", str(stats.dead))
    summary.add_row("throughput", f"{total / elapsed:,.0f} jobs/s over {elapsed:.2f}s")
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    summary.add_row(
        "webhook enqueue p50 / p99", f"{latencies[len(latencies) // 2] * 1000:.2f} / {p99:.2f} ms"
    )
    summary.add_row("last report", f"progress {report.progress}%, result {report.result}")
    console.print(summary)
    if dead:
        table = Table(title="dead-letter set")
        for col in ("job", "id", "reason", "last error"):
            table.add_column(col)
        for row in dead:
            table.add_row(*row)
        console.print(table)
    finished = stats.completed + stats.dead
    if finished != total:
        console.print(f"[red]only {finished} of {total} jobs finished[/]")
        return 1
    console.print("[green]every job ended: completed or in the dead-letter set with its reason[/]")
    return 0


async def _clean_up(settings: Settings) -> None:
    """Delete the demo's queues (a fresh App: the demo's may have been interrupted)."""
    app = App(settings, name="corral-demo-cleanup")
    try:
        for name in QUEUES:
            await app.queue(name).obliterate(force=True)
    finally:
        await app.close()


def run_demo(
    *,
    webhooks: int = 240,
    concurrency: int = 32,
    url: str | None = None,
    console: Console | None = None,
) -> int:
    base = Settings.from_url(url) if url else Settings.from_env()
    settings = base.replace(prefix=f"corral-demo-{secrets.token_hex(4)}")
    app = build_app(settings)
    out = console or Console()
    where = settings.target.redacted if settings.target else f"the shared server {app.redis_url}"
    out.print(
        f"[bold]Corral demo[/]: {webhooks} shop webhooks -> jobs, on {where} "
        f"(keys under {settings.prefix}:, deleted at the end)",
        soft_wrap=True,
    )
    try:
        return run_loop(_run(app, webhooks, concurrency, out))
    finally:
        try:
            run_loop(_clean_up(settings))
        except Exception as exc:  # do not hide the demo's own error behind this one
            out.print(f"[red]could not delete the demo's keys ({settings.prefix}:*): {exc}[/]")
