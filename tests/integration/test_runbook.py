"""The maintenance runbook (issue 13, seed 003): pause, wait until nothing runs
(``queue.wait_idle`` / ``corral queue wait-idle``), and find stuck jobs
(``running_longer`` / ``corral jobs ls --running-longer``), with real workers."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, ConfigError, Queue, QueueCounts
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._cli import Cli
from tests.integration._helpers import wait_until

JOBS_MODULE = """
from corral import App
app = App.from_env()
"""


async def test_wait_idle_and_running_longer_in_python(app: App) -> None:
    release = asyncio.Event()

    @app.job(queue="maint")
    async def slow(n: int) -> int:
        await release.wait()
        return n

    queue = app.queue("maint")
    async with running_worker(app, ["maint"], concurrency=2):
        first = await slow.enqueue(1)
        await wait_until(lambda: _active(queue, 1), what="the first job to start")
        await asyncio.sleep(0.4)
        second = await slow.enqueue(2)
        await wait_until(lambda: _active(queue, 2), what="the second job to start")
        await queue.pause()

        stuck = await queue.jobs("active", running_longer=timedelta(milliseconds=300))
        assert [j.id for j in stuck] == [first.id]  # the second started just now
        both = await queue.jobs("active", running_longer=timedelta(0), newest_first=False)
        assert [j.id for j in both] == [first.id, second.id]
        with pytest.raises(ConfigError, match="lists active jobs"):
            await queue.jobs("waiting", running_longer=timedelta(hours=1))

        seen: list[QueueCounts] = []
        assert not await queue.wait_idle(timeout=timedelta(milliseconds=300), on_poll=seen.append)
        assert seen and all(c.active == 2 and c.paused for c in seen)
        release.set()
        assert await queue.wait_idle(timeout=timedelta(seconds=10))
        assert (await queue.counts()).active == 0


async def _active(queue: Queue, n: int) -> bool:
    return (await queue.counts()).active == n


async def test_the_runbook_commands(
    app: App, server: EmbeddedServer, prefix: str, tmp_path: Path
) -> None:
    cli = Cli(server, prefix, tmp_path, JOBS_MODULE)
    release = asyncio.Event()

    @app.job(queue="maint")
    async def slow() -> None:
        await release.wait()

    queue = app.queue("maint")
    async with running_worker(app, ["maint"]):
        job = await slow.enqueue()
        await wait_until(lambda: _active(queue, 1), what="the job to start")
        await asyncio.sleep(0.3)

        listed = await asyncio.to_thread(
            cli, "jobs", "ls", "maint", "--state", "active", "--running-longer", "200ms", "--json"
        )
        assert [j["id"] for j in listed] == [job.id]
        none = await asyncio.to_thread(
            cli,
            "jobs",
            "ls",
            "maint",
            "--running-longer",
            "1h",  # implies --state active
        )
        assert "no active jobs running longer than 1h" in none.stdout
        wrong = await asyncio.to_thread(
            cli, "jobs", "ls", "maint", "--state", "waiting", "--running-longer", "1h", code=2
        )
        assert "--running-longer lists active jobs" in wrong.stderr

        await asyncio.to_thread(cli, "queue", "pause", "maint")
        late = await asyncio.to_thread(
            cli, "queue", "wait-idle", "maint", "--timeout", "300ms", code=5
        )
        assert "maint: 1 job(s) running" in late.stderr  # the progress line
        assert "maint: 1 job(s) still running after 300ms" in late.stderr

        waiting = asyncio.create_task(
            asyncio.to_thread(cli, "queue", "wait-idle", "maint", "--timeout", "30s", "--json")
        )
        await asyncio.sleep(0.5)
        assert not waiting.done()
        release.set()
        done = await waiting
        assert done["queue"] == "maint" and done["idle"] is True

    unpaused = await asyncio.to_thread(cli, "queue", "resume", "maint")
    assert unpaused.returncode == 0
    missing = await asyncio.to_thread(cli, "queue", "wait-idle", "nope", code=1)
    assert "no queue named 'nope'" in missing.stderr
