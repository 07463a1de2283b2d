"""A queue's length cap (issue 13, seed 003's ``maxJobs``): enqueue refused all or none with
QueueFull naming the queue, its cap and its count, from every way in (awaited, many, sync, the
CLI), set and shown by ``corral queue limit``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, QueueFull
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App
app = App.from_env()

@app.job(queue="mail")
async def send(to: str) -> str:
    return to
"""


async def test_every_way_to_enqueue_is_refused_past_the_cap(app: App) -> None:
    @app.job(queue="mail")
    async def send(to: str) -> str:
        return to

    queue = app.queue("mail")
    await queue.set_max_jobs(3)
    assert await queue.max_jobs() == 3
    await send.enqueue("a")
    await send.with_options(delay=timedelta(hours=1)).enqueue("later")
    with pytest.raises(QueueFull) as full:
        await app.enqueue_many([send.prepare("b"), send.prepare("c")])
    assert (full.value.queue, full.value.max_jobs, full.value.count) == ("mail", 3, 2)
    assert "queue 'mail' is full: 2 jobs waiting or delayed, its cap is 3" in str(full.value)
    assert (await queue.counts()).waiting == 1  # none of the batch was stored
    await send.enqueue("b")
    with pytest.raises(QueueFull):
        await send.enqueue("c")
    with pytest.raises(QueueFull):
        await asyncio.to_thread(send.enqueue_sync, "c")

    async with running_worker(app, ["mail"], burst=True) as worker:
        while worker.stats.completed < 2:
            await asyncio.sleep(0.02)
    assert (await send.enqueue("c")).created  # room again once the jobs ran
    await queue.set_max_jobs(None)
    assert await queue.max_jobs() is None
    await app.enqueue_many([send.prepare(str(i)) for i in range(10)])


def test_queue_limit_sets_and_shows_the_cap(
    server: EmbeddedServer, prefix: str, tmp_path: Path
) -> None:
    cli = Cli(server, prefix, tmp_path, JOBS_MODULE)
    cli("queue", "create", "mail")
    assert cli("queue", "limit", "mail", "--json") == {
        "queue": "mail",
        "max_jobs": None,
        "waiting_or_delayed": 0,
    }
    assert cli("queue", "limit", "mail", "--max-jobs", "1", "--json")["max_jobs"] == 1
    out = cli("queue", "limit", "mail").stdout
    assert "mail: at most 1 jobs waiting or delayed (now 0 waiting or delayed)" in out
    cli("enqueue", "send", '{"to": "a"}', "--app", "shopapp:app", cwd=cli.app_dir)
    refused = cli("enqueue", "send", '{"to": "b"}', "--app", "shopapp:app", cwd=cli.app_dir, code=4)
    lines = refused.stderr.strip().splitlines()
    assert (
        len(lines) == 1
        and "queue 'mail' is full: 1 jobs waiting or delayed, its cap is 1" in lines[0]
    )
    assert cli("queue", "limit", "mail", "--max-jobs", "0", "--json")["max_jobs"] is None
    cli("enqueue", "send", '{"to": "b"}', "--app", "shopapp:app", cwd=cli.app_dir)
    assert (
        "no queue named 'typo'" in cli("queue", "limit", "typo", "--max-jobs", "5", code=1).stderr
    )
    assert [q["queue"] for q in cli("queue", "ls", "--json")] == ["mail"]  # no phantom "typo"
