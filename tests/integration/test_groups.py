"""Multi-tenant groups with real worker processes: fairness, limits, holds, pause, crashes.

Workers are `corral worker tests.jobs.tenant_jobs:app` subprocesses (two or more); handlers
write a trace to Redis, and claim times come from the job hashes (server clock).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis

from corral import App, ConfigError, JobHandle, RateLimit, Settings
from corral.embedded import EmbeddedServer
from tests.jobs import tenant_jobs
from tests.jobs.tenant_jobs import Task

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def tapp(server: EmbeddedServer, prefix: str) -> AsyncIterator[App]:
    app = tenant_jobs.app
    app.client.forget()  # a previous test's loop is gone
    app.configure(Settings.from_url(server.url, prefix=prefix))
    async with app:
        yield app


@contextmanager
def workers(
    server: EmbeddedServer,
    prefix: str,
    count: int = 2,
    concurrency: int = 4,
    lease_ms: int = 5000,
    extra: tuple[str, ...] = (),
) -> Iterator[list[subprocess.Popen[bytes]]]:
    env = {
        **os.environ,
        "CORRAL_REDIS_URL": server.url,
        "CORRAL_PREFIX": prefix,
        "CORRAL_LEASE_MS": str(lease_ms),
    }
    cmd = [
        sys.executable,
        "-m",
        "corral",
        "worker",
        "tests.jobs.tenant_jobs:app",
        "-c",
        str(concurrency),
        *extra,
    ]
    # logs to files: a pipe nobody reads fills up (a line per job) and blocks the worker
    with ExitStack() as files:
        procs = [
            subprocess.Popen(
                cmd,
                env=env,
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=files.enter_context(tempfile.TemporaryFile()),
            )
            for _ in range(count)
        ]
        try:
            yield procs
        finally:
            for p in procs:
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
            for p in procs:
                try:
                    p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()


async def enqueue(app: App, shop: str, count: int, **task: Any) -> list[JobHandle[int]]:
    fn = tenant_jobs.tenant_task
    return await app.enqueue_many([fn.prepare(Task(shop=shop, n=i, **task)) for i in range(count)])


async def wait_all(handles: list[JobHandle[int]], timeout: float = 60) -> None:
    for h in handles:
        await h.result(timeout=timeout)


def trace(raw: redis.Redis, prefix: str) -> list[tuple[str, str, int, float]]:
    out = []
    for line in raw.lrange(f"{prefix}:trace", 0, -1):
        kind, shop, n, stamp, _pid = line.split("|")
        out.append((kind, shop, int(n), float(stamp)))
    return out


async def claim_times(handles: list[JobHandle[int]]) -> list[float]:
    infos = [await h.info() for h in handles]
    return [i.started_at.timestamp() * 1000 for i in infos if i.started_at is not None]


def max_in_window(stamps: list[float], window_ms: float) -> int:
    stamps = sorted(stamps)
    best, lo = 0, 0
    for hi, t in enumerate(stamps):
        while t - stamps[lo] >= window_ms:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


async def test_a_noisy_tenant_does_not_starve_a_small_one(
    tapp: App, server: EmbeddedServer, prefix: str, raw: redis.Redis
) -> None:
    concurrency, processes = 4, 2
    await tapp.queue("tenants").set_retention(completed_max=100_000)  # keep them to look at
    big = await enqueue(tapp, "noisy", 3000, sleep_ms=1)
    with workers(server, prefix, processes, concurrency):
        while len(trace(raw, prefix)) < 200:  # the flood is being worked on
            await asyncio.sleep(0.02)
        small = await enqueue(tapp, "quiet", 10, sleep_ms=1)
        await wait_all(small)
        # Server clock throughout: when each job was enqueued (ct) and claimed (sa).
        quiet = [await h.info() for h in small]
        noisy_claims = [
            int(v) for v in (raw.hget(f"{prefix}:{{tenants}}:j:{h.id}", "sa") for h in big) if v
        ]
        bound = 2 * concurrency * processes  # active groups x total concurrency
        for info in quiet:
            assert info.created_at is not None and info.started_at is not None
            enqueued = info.created_at.timestamp() * 1000
            started = info.started_at.timestamp() * 1000
            overtaken = sum(1 for sa in noisy_claims if enqueued <= sa < started)
            assert overtaken <= bound, f"a quiet job waited for {overtaken} noisy jobs (> {bound})"
        for h in big[:5]:
            await h.result(timeout=60)


async def test_group_concurrency_is_never_exceeded(
    tapp: App, server: EmbeddedServer, prefix: str, raw: redis.Redis
) -> None:
    await tapp.queue("tenants").set_limits(group_concurrency=2)
    await tapp.queue("tenants").group("vip").set_limits(concurrency=3)
    handles = []
    for shop in ("acme", "bolt", "vip"):
        handles += await enqueue(tapp, shop, 24, sleep_ms=25)
    with workers(server, prefix, 2, 8):
        await wait_all(handles)
    running: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    events = sorted(trace(raw, prefix), key=lambda t: (t[3], t[0] == "start"))
    for kind, shop, _, _ in events:
        running[shop] += 1 if kind == "start" else -1
        peak[shop] = max(peak[shop], running[shop])
    assert peak == {"acme": 2, "bolt": 2, "vip": 3}
    states = {g.group: g for g in await tapp.queue("tenants").groups()}
    assert all(g.active == 0 and g.waiting == 0 for g in states.values())


async def test_rate_limits_hold_in_every_window(
    tapp: App, server: EmbeddedServer, prefix: str
) -> None:
    queue = tapp.queue("tenants")
    await queue.set_limits(
        group_rate=RateLimit(4, timedelta(milliseconds=400)),
        rate=RateLimit(10, timedelta(milliseconds=400)),
    )
    by_shop = {shop: await enqueue(tapp, shop, 12) for shop in ("a", "b", "c")}
    with workers(server, prefix, 2, 8):
        for handles in by_shop.values():
            await wait_all(handles)
    everything: list[float] = []
    for shop, handles in by_shop.items():
        stamps = await claim_times(handles)
        assert len(stamps) == 12
        assert max_in_window(stamps, 400) <= 4, shop
        everything += stamps
    assert max_in_window(everything, 400) <= 10
    # the limits bite: 36 starts at 10 per 400 ms take at least 3 windows
    assert max(everything) - min(everything) >= 3 * 400 - 50


async def test_workers_do_not_spin_while_everything_is_limited(
    fresh_server: Callable[..., EmbeddedServer], prefix: str
) -> None:
    srv = fresh_server()
    app = tenant_jobs.app
    app.client.forget()
    app.configure(Settings.from_url(srv.url, prefix=prefix))
    async with app:
        await app.queue("tenants").set_limits(rate=RateLimit(1, timedelta(seconds=3)))
        handles = await enqueue(app, "a", 3)
        with workers(srv, prefix, 2, 4):
            await handles[0].result(timeout=20)
            client = redis.Redis.from_url(srv.url, decode_responses=True)
            before = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
            await asyncio.sleep(1.5)  # everything is limited now
            after = client.info("commandstats").get("cmdstat_evalsha", {}).get("calls", 0)
            client.close()
            # blocked workers sleep until the limit frees: a handful of calls (heartbeats, reaper)
            assert after - before < 25, after - before
            await wait_all(handles)


async def test_rate_limited_holds_back_only_its_own_group(
    tapp: App, server: EmbeddedServer, prefix: str, raw: redis.Redis
) -> None:
    limited = await enqueue(tapp, "throttled", 1, rate_limit_ms=1200)
    with workers(server, prefix, 2, 4):
        while not any(t[0] == "limited" for t in trace(raw, prefix)):
            await asyncio.sleep(0.01)  # until the first job has hit its 429
        await asyncio.sleep(0.05)
        state = await tapp.queue("tenants").group("throttled").state()
        assert state.state == "limited"
        rest = await enqueue(tapp, "throttled", 3)
        others = await enqueue(tapp, "free", 20, sleep_ms=5)
        await wait_all(others, timeout=10)
        free_done = time.time() * 1000
        await wait_all(limited + rest)
    t = trace(raw, prefix)
    hit = next(s for k, shop, _, s in t if k == "limited")
    throttled_starts = [
        s for k, shop, _, s in t if shop == "throttled" and k == "start" and s > hit
    ]
    assert throttled_starts
    assert min(throttled_starts) >= hit + 1100  # nothing of that group ran during the hold
    assert free_done < hit + 1100  # while the other group ran to the end
    info = await limited[0].info()
    assert info.reschedules == 1
    assert info.errors == []  # not counted as a failure


async def test_pause_and_resume_one_group(tapp: App, server: EmbeddedServer, prefix: str) -> None:
    await tapp.queue("tenants").create()  # pausing acts on an existing queue only
    group = tapp.queue("tenants").group("acme")
    await group.pause()
    acme = await enqueue(tapp, "acme", 5)
    bolt = await enqueue(tapp, "bolt", 5)
    with workers(server, prefix, 2, 4):
        await wait_all(bolt)
        await asyncio.sleep(0.2)
        states = {g.group: g for g in await tapp.queue("tenants").groups()}
        assert states["acme"].state == "paused"
        assert states["acme"].waiting == 5
        assert [await h.state() for h in acme] == ["waiting"] * 5
        await group.resume()
        await wait_all(acme)


async def test_killed_worker_frees_its_group_slots(
    tapp: App, server: EmbeddedServer, prefix: str, raw: redis.Redis
) -> None:
    await tapp.queue("tenants").set_limits(group_concurrency=1)
    first = await enqueue(tapp, "solo", 1, sleep_ms=30_000)
    with workers(server, prefix, 1, 4, lease_ms=1000) as (victim,):
        while (await first[0].state()) != "active":
            await asyncio.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
    # the dead worker's job holds the group's only slot until its lease is reaped
    more = await enqueue(tapp, "solo", 3, sleep_ms=5)
    # let the re-run be quick: the payload the next worker reads no longer sleeps
    quick = '{"task": ' + Task(shop="solo", n=0).model_dump_json() + "}"
    raw.set(f"{prefix}:{{tenants}}:d:{first[0].id}", quick)
    with workers(server, prefix, 2, 4, lease_ms=1000):
        await wait_all(first + more, timeout=30)
    info = await first[0].info()
    assert info.stalls == 1
    state = await tapp.queue("tenants").group("solo").state()
    assert (state.active, state.waiting) == (0, 0)


def test_bad_limits_are_refused() -> None:
    with pytest.raises(ConfigError):
        RateLimit(0, timedelta(seconds=1))
    with pytest.raises(ConfigError):
        RateLimit(5, timedelta(0))


async def test_non_positive_group_limits_refused(tapp: App) -> None:
    with pytest.raises(ConfigError):
        await tapp.queue("tenants").set_limits(group_concurrency=0)
    with pytest.raises(ConfigError):
        await tapp.queue("tenants").group("a").set_limits(concurrency=-1)
    with pytest.raises(ConfigError):
        await tapp.queue("tenants").group("a").set_limits(weight=0)


async def test_weighted_tiers_keep_the_low_tier_moving(
    tapp: App, server: EmbeddedServer, prefix: str
) -> None:
    """Two worker processes serve a critical and a low tier 3:1 by weight: under a flood of
    critical work the low tier still finishes long before the flood does."""
    job = tenant_jobs.tenant_task
    flood = [Task(shop="c", n=i, sleep_ms=5) for i in range(400)]
    critical = await tapp.enqueue_many(
        [job.with_options(queue="critical").prepare(t) for t in flood]
    )
    trickle = [Task(shop="l", n=i, sleep_ms=5) for i in range(20)]
    low = await tapp.enqueue_many([job.with_options(queue="low").prepare(t) for t in trickle])
    tiers = ("-q", "critical", "-q", "low", "-w", "critical=3", "-w", "low=1")
    with workers(server, prefix, 2, 2, extra=tiers):
        await wait_all(low, timeout=60)
        left = (await tapp.queue("critical").counts()).pending
        await wait_all(critical, timeout=120)
    assert left > 100, f"the low tier only finished once the flood was nearly done ({left} left)"


async def test_raising_the_queue_limit_frees_waiting_groups_at_once(tapp: App) -> None:
    queue = tapp.queue("tenants")
    await queue.set_limits(group_concurrency=1)
    await enqueue(tapp, "acme", 3)
    engine = await tapp.engine()
    claimed = await engine.claim("tenants", 3, "w", 30_000)
    assert len(claimed.jobs) == 1  # at its limit: the group left the ready set
    assert (await queue.group("acme").state()).ready is False
    await queue.set_limits(group_concurrency=3)
    assert (await queue.group("acme").state()).ready is True
    assert len((await engine.claim("tenants", 3, "w", 30_000)).jobs) == 2
