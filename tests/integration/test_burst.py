"""Issue 13: ``--burst`` exits once nothing is claimable now. Waiting jobs of unpaused queues
(and retries that are due at once) are run; delayed jobs not yet due, backing-off retries,
paused queues and paused groups do not keep it alive. Real server; the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, Fixed, JobState, RetryPolicy, Worker
from corral.embedded import EmbeddedServer
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App
app = App.from_env()

@app.job(queue="shop")
async def sync_order(order: str) -> str:
    return order

@app.job(queue="mail")
async def send_mail(to: str) -> str:
    return to
"""


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


async def burst(app: App, queues: list[str]) -> float:
    """Run a burst worker; how long it took to exit."""
    started = time.monotonic()
    await asyncio.wait_for(Worker(app, queues, burst=True).run(), 20)
    return time.monotonic() - started


async def test_delayed_jobs_not_yet_due_do_not_keep_it_alive(app: App) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    later = await sync_order.with_options(delay=timedelta(hours=1)).enqueue("later")
    soon = await sync_order.with_options(delay=timedelta(milliseconds=50)).enqueue("soon")
    now = [await sync_order.enqueue(f"acme:{i}") for i in range(5)]
    await asyncio.sleep(0.1)  # "soon" is due: claimable now, so it runs
    assert await burst(app, ["shop"]) < 5
    for h in [*now, soon]:
        assert await h.state() == JobState.COMPLETED
    info = await later.info()
    assert info.state == JobState.DELAYED and info.due_at is not None  # left for later


async def test_retries_due_now_are_run_and_backing_off_ones_are_left(app: App) -> None:
    @app.job(queue="shop", retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(0))))
    async def flaky_now(order: str) -> None:
        raise ConnectionError("down")

    @app.job(queue="shop", retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(hours=1))))
    async def flaky_later(order: str) -> None:
        raise ConnectionError("down")

    at_once = await flaky_now.enqueue("a")
    backing_off = await flaky_later.enqueue("b")
    assert await burst(app, ["shop"]) < 5
    dead = await at_once.info()  # each retry was claimable the moment it failed
    assert (dead.state, dead.attempt, dead.dead_reason) == (JobState.DEAD, 3, "exhausted")
    waiting = await backing_off.info()
    assert (waiting.state, waiting.attempt) == (JobState.DELAYED, 1)


async def test_paused_queues_and_groups_do_not_keep_it_alive(app: App) -> None:
    @app.job(queue="shop", group=lambda order: order.split(":")[0])
    async def sync_order(order: str) -> str:
        return order

    @app.job(queue="mail")
    async def send_mail(to: str) -> str:
        return to

    mails = [await send_mail.enqueue(f"m{i}") for i in range(3)]
    await app.queue("mail").pause()
    held = await sync_order.enqueue("paused-shop:1")
    await app.queue("shop").group("paused-shop").pause()
    served = await sync_order.enqueue("acme:1")

    assert await burst(app, ["shop", "mail"]) < 5
    assert await served.state() == JobState.COMPLETED
    assert await held.state() == JobState.WAITING
    for h in mails:
        assert await h.state() == JobState.WAITING


async def test_the_cli_burst_exits_on_a_paused_queue(app: App, cli: Cli) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    @app.job(queue="mail")
    async def send_mail(to: str) -> str:
        return to

    mail = await send_mail.enqueue("ops@example.com")
    order = await sync_order.enqueue("acme:1")
    later = await sync_order.with_options(delay=timedelta(minutes=10)).enqueue("acme:2")
    cli("queue", "pause", "mail")
    started = time.monotonic()
    cli("worker", "shopapp:app", "--burst", cwd=cli.app_dir)
    assert time.monotonic() - started < 20  # it exited by itself, with status 0
    assert await order.state() == JobState.COMPLETED
    assert await mail.state() == JobState.WAITING
    assert await later.state() == JobState.DELAYED
