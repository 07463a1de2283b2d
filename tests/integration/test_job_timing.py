"""Issue 13, "what a job will do next": when a delayed or backing-off job is due, when a running
job's lease runs out and how long it has run, in the read models, the Python listings and the
CLI (a subprocess against a real server)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral import App, Fixed, JobState, RetryPolicy
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App
app = App.from_env()

@app.job(queue="shop")
async def sync_order(order: str) -> str:
    return order
"""


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


def near(moment: datetime | None, expected: datetime, slack: float = 5.0) -> bool:
    return moment is not None and abs((moment - expected).total_seconds()) < slack


async def test_a_delayed_job_says_when_it_is_due(app: App, cli: Cli) -> None:
    @app.job(queue="shop")
    async def sync_order(order: str) -> str:
        return order

    later = await sync_order.with_options(delay=timedelta(minutes=10)).enqueue("acme:1")
    now = await sync_order.enqueue("acme:2")
    expected = datetime.now(UTC) + timedelta(minutes=10)

    info = await later.info()
    assert info.state == JobState.DELAYED and near(info.due_at, expected)
    assert info.lease_until is None and info.running_for() is None
    waiting = await now.info()
    assert waiting.due_at is None and waiting.lease_until is None

    (listed,) = await app.queue("shop").jobs("delayed")
    assert listed.id == later.id and near(listed.due_at, expected)
    (waiting_row,) = await app.queue("shop").jobs("waiting")
    assert waiting_row.due_at is None  # waiting jobs have no score to show

    rows = cli("jobs", "ls", "shop", "--state", "delayed", "--json")
    assert rows[0]["id"] == later.id
    assert near(datetime.fromisoformat(rows[0]["due_at"]), expected)
    assert rows[0]["lease_until"] is None
    human = cli("jobs", "ls", "shop", "--state", "delayed").stdout
    assert "in 9m" in human  # due in a bit under ten minutes

    shown = cli("jobs", "show", "shop", later.id, "--json")
    assert near(datetime.fromisoformat(shown["due_at"]), expected)
    assert (shown["lease_until"], shown["running_for"]) == (None, None)
    text = cli("jobs", "show", "shop", later.id).stdout
    assert any(line.split()[:3] == ["due", "in", "9m"] for line in text.splitlines()), text


async def test_a_job_backing_off_says_when_it_runs_again(app: App) -> None:
    @app.job(queue="shop", retry=RetryPolicy(attempts=3, backoff=Fixed(timedelta(minutes=5))))
    async def flaky(order: str) -> None:
        raise ConnectionError("upstream down")

    handle = await flaky.enqueue("acme:1")
    async with running_worker(app, ["shop"]):
        for _ in range(200):
            info = await handle.info()
            if info.state == JobState.DELAYED:
                break
            await asyncio.sleep(0.02)
    assert info.state == JobState.DELAYED and info.attempt == 1
    assert near(info.due_at, datetime.now(UTC) + timedelta(minutes=5))
    (found,) = await app.queue("shop").jobs("delayed")
    assert near(found.due_at, datetime.now(UTC) + timedelta(minutes=5))


async def test_a_running_job_shows_its_lease_and_how_long_it_has_run(app: App, cli: Cli) -> None:
    started = asyncio.Event()
    release = asyncio.Event()

    @app.job(queue="shop")
    async def slow(order: str) -> str:
        started.set()
        await release.wait()
        return order

    handle = await slow.enqueue("acme:1")
    lease = timedelta(seconds=20)
    async with running_worker(app, ["shop"], lease=lease) as worker:
        await asyncio.wait_for(started.wait(), 10)
        await asyncio.sleep(1.1)
        info = await handle.info()
        assert info.state == JobState.ACTIVE and info.worker == worker.id
        assert near(info.lease_until, datetime.now(UTC) + lease, 8)
        ran = info.running_for()
        assert ran is not None and timedelta(seconds=1) <= ran < timedelta(seconds=10)
        (row,) = await app.queue("shop").jobs("active")
        assert row.lease_until is not None and row.running_for() is not None

        listed = cli("jobs", "ls", "shop", "--state", "active", "--json")
        assert listed[0]["lease_until"] is not None and listed[0]["due_at"] is None
        human = cli("jobs", "ls", "shop", "--state", "active").stdout
        assert re.search(r"running \ds, lease 1\ds", human), human  # renewed every ~7s
        shown = cli("jobs", "show", "shop", handle.id, "--json")
        assert shown["running_for"] >= 1.0 and shown["due_at"] is None
        assert near(datetime.fromisoformat(shown["lease_until"]), datetime.now(UTC) + lease, 8)
        text = cli("jobs", "show", "shop", handle.id).stdout
        assert re.search(r"running +for \ds", text), text
        assert re.search(r"lease +ends in 1\ds", text), text
        release.set()
        await handle.result(timeout=10)
    done = await handle.info()
    assert done.lease_until is None and done.due_at is None and done.running_for() is None
