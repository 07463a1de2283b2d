"""The operator's Python API against a real server: list, find, drain, clean, obliterate,
promote, retry, remove, priority, cancel anywhere (also from another process), and the DLQ."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from corral import (
    App,
    ConfigError,
    Fatal,
    JobFailed,
    JobFilter,
    JobNotFound,
    JobState,
    PayloadError,
    QueueNotFound,
    RetryPolicy,
    Settings,
)
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.jobs import ops_jobs

ROOT = Path(__file__).resolve().parents[2]
ONE = RetryPolicy(attempts=1)


async def wait_for(check, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not await check():
        assert time.monotonic() < deadline, "condition not reached"
        await asyncio.sleep(0.02)


def make_jobs(app: App):  # type: ignore[no-untyped-def]
    @app.job(queue="q", retry=ONE, group=lambda order: order.split(":")[0])
    async def handle(order: str) -> str:
        if order.endswith("!"):
            raise Fatal(f"bad order {order}")
        if order.endswith("?"):
            raise TimeoutError(f"upstream slow for {order}")
        return order.upper()

    return handle


async def test_list_get_and_find(app: App) -> None:
    handle = make_jobs(app)
    ok = [await handle.enqueue(f"acme:{i}") for i in range(3)]
    bad = await handle.enqueue("bolt:1!")
    slow = await handle.enqueue("bolt:2?")
    later = await handle.with_options(delay=timedelta(hours=1)).enqueue("acme:later")
    q = app.queue("q")
    waiting = await q.jobs("waiting", newest_first=False)
    assert [j.id for j in waiting] == [h.id for h in (*ok, bad, slow)]
    assert [j.id for j in await q.jobs("waiting", limit=2, offset=1, newest_first=False)] == [
        ok[1].id,
        ok[2].id,
    ]
    async with running_worker(app, ["q"]):
        for h in ok:
            await h.result(timeout=10)
        for h in (bad, slow):
            with pytest.raises(JobFailed):
                await h.result(timeout=10)
    assert [j.id for j in await q.jobs("delayed")] == [later.id]
    assert {j.id for j in await q.jobs("completed")} == {h.id for h in ok}
    dead = {j.id: j for j in await q.jobs("dead")}
    assert dead[bad.id].dead_reason == "fatal"
    assert dead[slow.id].error_type == "TimeoutError"

    info = await q.get(slow.id)
    assert info.errors[0].traceback.startswith("Traceback")
    assert info.group == "bolt"

    found = await q.find(JobFilter(group="bolt"))
    assert {j.id for j in found} == {bad.id, slow.id}
    assert [j.id for j in await q.find(JobFilter(error_type="TimeoutError"))] == [slow.id]
    assert [j.id for j in await q.find(JobFilter(id_prefix=later.id[:20]))] == [later.id]
    since = datetime.now(UTC) - timedelta(minutes=1)
    assert len(await q.find(JobFilter(name="handle", since=since), limit=2)) == 2
    assert await q.find(JobFilter(until=since)) == []
    with pytest.raises(JobNotFound):
        await q.get("no-such-job")


async def test_promote_retry_remove_priority(app: App) -> None:
    handle = make_jobs(app)
    q = app.queue("q")
    later = await handle.with_options(delay=timedelta(hours=1)).enqueue("acme:later")
    low = await handle.with_options(priority=900).enqueue("acme:low")
    high = await handle.enqueue("acme:high")
    assert await q.set_priority(low.id, 10)
    assert [j.id for j in await q.jobs("waiting", newest_first=False)] == [low.id, high.id]
    with pytest.raises(ConfigError):
        await q.set_priority(low.id, 99999)
    assert await q.promote(later.id)
    assert not await q.promote(later.id)  # no longer delayed
    doomed = await handle.enqueue("bolt:1!")
    async with running_worker(app, ["q"]):
        assert await later.result(timeout=10) == "ACME:LATER"
        with pytest.raises(JobFailed):
            await doomed.result(timeout=10)
        assert await q.retry(doomed.id)  # runs again (and dies again: the input is still bad)
        await wait_for(lambda: _has_replays(q, doomed.id, 1))
        with pytest.raises(JobFailed):
            await doomed.result(timeout=10)
    info = await q.get(doomed.id)
    assert len(info.errors) == 2
    assert info.replays[0].reason == "fatal"
    await q.remove(doomed.id)
    with pytest.raises(JobNotFound, match=f"no job {doomed.id} in queue 'q'"):
        await q.remove(doomed.id)
    with pytest.raises(JobNotFound):
        await q.get(doomed.id)


async def test_unknown_job_ids_are_errors_not_wrong_states(app: App) -> None:
    """promote/retry/priority/replay of an id that does not exist say so (issue 11.6)."""
    handle = make_jobs(app)
    await handle.enqueue("acme:1")
    q = app.queue("q")
    for action in (
        lambda: q.promote("nope"),
        lambda: q.retry("nope"),
        lambda: q.set_priority("nope", 5),
        lambda: q.dead_letters.replay_one("nope"),
        lambda: q.remove("nope"),
        lambda: q.cancel("nope"),
    ):
        with pytest.raises(JobNotFound, match="no job nope in queue 'q'"):
            await action()


async def test_unknown_queues_are_refused_and_never_created(app: App) -> None:
    """Operations on a queue nobody enqueued to raise QueueNotFound naming the known ones, and
    leave nothing behind; enqueue, create() and configuration declare a queue (issue 11.6)."""
    handle = make_jobs(app)
    await handle.enqueue("acme:1")
    typo = app.queue("qq")
    actions = (
        typo.pause,
        typo.resume,
        typo.counts,
        typo.drain,
        lambda: typo.clean("completed", timedelta(hours=1)),
        typo.obliterate,
        lambda: typo.jobs("waiting"),
        lambda: typo.find(JobFilter(name="x")),
        lambda: typo.get("x"),
        lambda: typo.promote("x"),
        lambda: typo.dead_letters.jobs(),
        lambda: typo.dead_letters.purge(),
        lambda: typo.dead_letters.replay(),
        typo.group("acme").pause,
        typo.groups,
    )
    for action in actions:
        with pytest.raises(QueueNotFound, match=r"no queue named 'qq' \(known: q\)"):
            await action()
    engine = await app.engine()
    assert await engine.queues() == ["q"]
    assert not await typo.exists()
    await typo.create()
    assert (await typo.counts()).waiting == 0
    await typo.pause()
    assert (await typo.counts()).paused
    assert await engine.queues() == ["q", "qq"]


async def _has_replays(q, job_id: str, n: int) -> bool:  # type: ignore[no-untyped-def]
    info = await q.get(job_id)
    return len(info.replays) >= n and info.state == JobState.DEAD


async def test_drain_clean_and_obliterate(app: App) -> None:
    handle = make_jobs(app)
    q = app.queue("q")
    for i in range(30):
        await handle.enqueue(f"acme:{i}")
    await handle.with_options(delay=timedelta(hours=1)).enqueue("acme:later")
    assert await q.drain() == 31
    assert (await q.counts()).pending == 0

    done = [await handle.enqueue(f"acme:{i}") for i in range(5)]
    dead = await handle.enqueue("bolt:x!")
    async with running_worker(app, ["q"]):
        for h in done:
            await h.result(timeout=10)
        with pytest.raises(JobFailed):
            await dead.result(timeout=10)
    assert await q.clean("completed", timedelta(hours=1)) == 0  # nothing that old
    assert await q.clean("completed", timedelta(0)) == 5
    assert await q.clean("dead", timedelta(0)) == 1
    with pytest.raises(ConfigError):
        await q.clean("waiting", timedelta(0))

    @app.job(queue="q2")
    async def slow(x: int) -> int:
        await asyncio.sleep(30)
        return x

    running = await slow.enqueue(1)
    q2 = app.queue("q2")
    async with running_worker(app, ["q2"], grace=timedelta(0)):
        await wait_for(lambda: _is(running, "active"))
        with pytest.raises(ConfigError, match="running"):
            await q2.obliterate()
        assert (await q2.counts()).active == 1
    await q.obliterate()
    engine = await app.engine()
    assert "q" not in await engine.queues()
    assert await engine.client.keys(f"{engine.prefix}:{{q}}:*") == []


async def _is(handle, state: str) -> bool:  # type: ignore[no-untyped-def]
    return (await handle.state()) == state


async def test_cancel_waiting_delayed_group_and_name(app: App) -> None:
    handle = make_jobs(app)
    q = app.queue("q")
    waiting = await handle.enqueue("acme:1")
    delayed = await handle.with_options(delay=timedelta(hours=1)).enqueue("acme:2")
    assert await q.cancel(waiting.id, reason="customer asked", by="ops@test") == "cancelled"
    assert await q.cancel(delayed.id) == "cancelled"
    assert await q.cancel(waiting.id) == "ended"
    with pytest.raises(JobNotFound):
        await q.cancel("nope")
    info = await q.get(waiting.id)
    assert info.state == JobState.CANCELLED
    assert info.dead_reason == "cancelled"
    assert info.cancellation is not None
    assert (info.cancellation.by, info.cancellation.reason) == ("ops@test", "customer asked")
    assert info.cancellation.at is not None
    with pytest.raises(JobFailed, match="cancelled"):
        await waiting.result(timeout=1)

    for i in range(4):
        await handle.enqueue(f"bolt:{i}")
        await handle.enqueue(f"cedar:{i}")
    assert await q.cancel_where(JobFilter(group="bolt"), reason="shop uninstalled") == 4
    assert (await q.counts()).waiting == 4
    assert await q.cancel_where(JobFilter(name="handle")) == 4
    assert (await q.counts()).waiting == 0
    with pytest.raises(ConfigError):
        await q.cancel_where(JobFilter())
    assert await q.dead_letters.count(JobFilter(error_type="Cancelled")) == 10


@pytest.fixture
async def ops_app(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    app = ops_jobs.app
    app.client.forget()
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


@pytest.mark.parametrize("job", ["sleep_async", "sleep_thread", "sleep_process"])
async def test_cancel_a_running_job_from_another_process(
    ops_app: App, server: EmbeddedServer, prefix: str, tmp_path: Path, job: str
) -> None:
    marker = tmp_path / "marker.txt"
    handle = await ops_app.registry[job].enqueue(str(marker), 30.0)
    async with running_worker(ops_app, ["ops"], process_slots=1) as worker:
        await wait_for(lambda: _is(handle, "active"))
        await wait_for(lambda: _started(marker), timeout=20)
        started = time.monotonic()
        env = {**os.environ, "CORRAL_REDIS_URL": server.url, "CORRAL_PREFIX": prefix}
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "corral",
                "jobs",
                "cancel",
                "ops",
                handle.id,
                "--reason",
                "wrong customer",
                "--yes",  # a one-job cancel asks, like rm (issue 13.4)
                "--json",
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
        assert '"signalled"' in proc.stdout
        with pytest.raises(JobFailed, match="cancelled"):
            await handle.result(timeout=5)
        assert time.monotonic() - started < 3.0
        info = await handle.info()
        assert info.state == JobState.CANCELLED
        assert info.cancellation is not None
        assert info.cancellation is not None
        assert info.cancellation.reason == "wrong customer"
        assert "wrong customer" in info.errors[-1].message
        assert worker.stats.cancelled == 1
    lines = marker.read_text().split("\n")
    child_pid = int(lines[0].split()[1])
    if job == "sleep_process":
        assert child_pid != os.getpid()
        await wait_for(lambda: _dead(child_pid), timeout=5)  # the child was killed
    else:
        await wait_for(lambda: _marked(marker, "cancelled"), timeout=5)  # the handler saw it


async def _started(marker: Path) -> bool:
    return marker.exists() and "start" in marker.read_text()


async def _marked(marker: Path, what: str) -> bool:
    return what in marker.read_text()


async def _dead(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().split()[2] == "Z"


async def test_dead_letters_filter_replay_and_purge(app: App) -> None:
    handle = make_jobs(app)
    q = app.queue("q")
    dlq = q.dead_letters
    bad = [await handle.enqueue(f"acme:{i}!") for i in range(6)]
    slow = [await handle.enqueue(f"bolt:{i}?") for i in range(4)]
    async with running_worker(app, ["q"]):
        for h in bad + slow:
            with pytest.raises(JobFailed):
                await h.result(timeout=10)
    assert await dlq.count() == 10
    assert await dlq.count(JobFilter(error_type="Fatal")) == 6
    assert await dlq.count(JobFilter(group="bolt")) == 4
    assert {j.id for j in await dlq.jobs(JobFilter(error_type="TimeoutError"))} == {
        h.id for h in slow
    }
    one = await dlq.get(bad[0].id)
    assert one.dead_reason == "fatal"
    with pytest.raises(JobNotFound):
        await dlq.get("nope")

    # an edit that does not validate is refused, naming the field; the job stays dead
    with pytest.raises(PayloadError, match="order"):
        await dlq.replay_one(bad[0].id, payload={"order": ["not", "a", "string"]})
    assert (await q.get(bad[0].id)).state == JobState.DEAD
    assert await dlq.count() == 10

    dry = await dlq.replay(JobFilter(group="bolt"), dry_run=True)
    assert (dry.matched, dry.replayed) == (4, 0)
    started = time.monotonic()
    report = await dlq.replay(JobFilter(group="bolt"), rate=10, by="oncall@test")
    assert (report.matched, report.replayed) == (4, 4)
    assert time.monotonic() - started >= 0.3  # 4 jobs at 10/s
    replayed = await q.get(slow[0].id)
    assert replayed.state == JobState.WAITING
    assert replayed.attempt == 0
    assert replayed.replays[-1].by == "oncall@test"
    assert len(replayed.errors) == 1  # history kept

    assert await dlq.replay_one(bad[0].id, payload={"order": "acme:fixed"})
    async with running_worker(app, ["q"]):
        assert await bad[0].result(timeout=10) == "ACME:FIXED"
        for h in slow:
            with pytest.raises(JobFailed):
                await h.result(timeout=10)
    assert (await q.get(bad[0].id)).replays[-1].edited is True
    assert await dlq.purge(JobFilter(group="bolt"), dry_run=True) == 4
    assert await dlq.purge(JobFilter(group="bolt")) == 4
    assert await dlq.count() == 5
    assert await dlq.purge() == 5


async def test_dead_set_is_bounded_and_trimming_is_counted(app: App) -> None:
    handle = make_jobs(app)
    q = app.queue("q")
    await q.set_retention(dead_max=3)
    jobs = [await handle.enqueue(f"acme:{i}!") for i in range(7)]
    async with running_worker(app, ["q"]):
        for h in jobs:
            with pytest.raises((JobFailed, JobNotFound)):
                await h.result(timeout=10)
    counts = await q.counts()
    assert counts.dead == 3
    assert counts.dead_trimmed == 4
