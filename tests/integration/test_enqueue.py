"""Enqueue end to end: validation at the edge, size limits, idempotency, batches, typed
payloads and results, sync producers, priorities, delays and groups."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import redis
from pydantic import BaseModel

from corral import App, ConfigError, JobState, PayloadError
from corral.testing import running_worker
from tests.integration._helpers import keys_of, wait_state, wait_until


class Order(BaseModel):
    sku: str
    qty: int


class Receipt(BaseModel):
    sku: str
    total: float
    lines: list[str]


def job_keys(raw: redis.Redis, prefix: str) -> list[str]:
    return [k for k in keys_of(raw, prefix) if ":j:" in k]


async def test_bad_payload_names_the_field_and_writes_nothing(
    app: App, raw: redis.Redis, prefix: str
) -> None:
    @app.job(queue="q")
    async def ship(order: Order, express: bool = False) -> None: ...

    with pytest.raises(PayloadError) as info:
        await ship.enqueue({"sku": "A-1", "qty": "many"})  # type: ignore[arg-type]
    assert info.value.fields == ["order.qty"]
    assert "order.qty" in str(info.value)

    with pytest.raises(PayloadError, match="express"):
        await ship.enqueue(Order(sku="A", qty=1), express="perhaps")  # type: ignore[arg-type]

    with pytest.raises(PayloadError, match="ship"):
        await ship.enqueue(Order(sku="A", qty=1), unknown=1)  # type: ignore[call-arg]

    assert keys_of(raw, prefix) == []


async def test_payload_size_limit(
    make_app: Callable[..., App], raw: redis.Redis, prefix: str
) -> None:
    small = make_app(max_payload_bytes=200)

    @small.job(queue="q")
    async def store(text: str) -> None: ...

    async with small:
        with pytest.raises(PayloadError, match="over the limit of 200 bytes"):
            await store.enqueue("x" * 500)
        assert keys_of(raw, prefix) == []
        handle = await store.enqueue("x" * 50)
        assert (await handle.state()) == JobState.WAITING


async def test_job_id_is_idempotent(app: App, raw: redis.Redis, prefix: str) -> None:
    @app.job(queue="q")
    async def charge(amount: int) -> None: ...

    first = await charge.with_options(job_id="order-1").enqueue(10)
    again = await charge.with_options(job_id="order-1").enqueue(99)
    assert first.created is True
    assert again.created is False
    assert first.id == again.id == "order-1"
    info = await first.info()
    assert info.payload == {"amount": 10}  # the second call stored nothing
    assert (await app.queue("q").counts()).waiting == 1
    assert job_keys(raw, prefix) == [f"{prefix}:{{q}}:j:order-1"]


async def test_enqueue_many_is_all_or_nothing(app: App, raw: redis.Redis, prefix: str) -> None:
    @app.job(queue="q")
    async def count(n: int) -> None: ...

    # An invalid call fails while preparing: nothing reaches Redis.
    with pytest.raises(PayloadError):
        await app.enqueue_many([count.prepare(1), count.prepare("two"), count.prepare(3)])  # type: ignore[arg-type]
    assert job_keys(raw, prefix) == []

    # An entry the engine refuses (here: an empty name) leaves the others unstored too.
    good = count.prepare(1)
    bad = count.prepare(2)
    spec = dataclasses.replace(bad.new.spec, name="")
    broken = dataclasses.replace(bad, new=dataclasses.replace(bad.new, spec=spec))
    with pytest.raises(PayloadError):
        await app.enqueue_many([good, broken, count.prepare(3)])
    assert job_keys(raw, prefix) == []

    handles = await app.enqueue_many([count.prepare(i) for i in range(5)])
    assert [h.created for h in handles] == [True] * 5
    assert (await app.queue("q").counts()).waiting == 5

    # The same id twice in one batch: stored once.
    dup = count.with_options(job_id="dup")
    flags = [h.created for h in await app.enqueue_many([dup.prepare(1), dup.prepare(2)])]
    assert flags == [True, False]


async def test_enqueue_many_refuses_mixed_queues(app: App, raw: redis.Redis, prefix: str) -> None:
    @app.job(queue="a")
    async def one() -> None: ...

    @app.job(queue="b")
    async def two() -> None: ...

    with pytest.raises(ConfigError, match="atomic per queue"):
        await app.enqueue_many([one.prepare(), two.prepare()])
    with pytest.raises(ConfigError):
        await app.enqueue_many([one.prepare(), one.with_options(queue="b").prepare()])
    assert job_keys(raw, prefix) == []
    assert await app.enqueue_many([]) == []


async def test_models_round_trip_into_handler_and_back(app: App) -> None:
    seen: list[object] = []

    @app.job(queue="q")
    async def bill(order: Order, discount: float = 0.0) -> Receipt:
        seen.append(order)
        return Receipt(
            sku=order.sku, total=order.qty * 2.5 - discount, lines=[order.sku] * order.qty
        )

    @app.job(queue="q")
    def tally(orders: list[Order]) -> dict[str, int]:
        return {o.sku: o.qty for o in orders}

    async with running_worker(app, ["q"]):
        handle = await bill.enqueue(Order(sku="A-1", qty=2), discount=1.0)
        receipt = await handle.result(timeout=10)
        many = await tally.enqueue([Order(sku="x", qty=1), {"sku": "y", "qty": "2"}])  # type: ignore[list-item]
        totals = await many.result(timeout=10)

    assert isinstance(seen[0], Order)
    assert seen[0] == Order(sku="A-1", qty=2)
    assert isinstance(receipt, Receipt)
    assert receipt == Receipt(sku="A-1", total=4.0, lines=["A-1", "A-1"])
    assert totals == {"x": 1, "y": 2}  # "2" was coerced at enqueue
    # A handle built from an id alone decodes the stored JSON without the type.
    plain = await app.handle("q", handle.id).result(timeout=5)
    assert plain == {"sku": "A-1", "total": 4.0, "lines": ["A-1", "A-1"]}


async def test_enqueue_sync_from_sync_code(app: App) -> None:
    @app.job(queue="q")
    def double(n: int) -> int:
        return n * 2

    def producer() -> list[int]:  # what a Flask view or a script would do
        handles = [double.enqueue_sync(n) for n in range(3)]
        return [h.result_sync(timeout=10) for h in handles]

    async with running_worker(app, ["q"]):
        results = await asyncio.to_thread(producer)
    assert results == [0, 2, 4]

    with pytest.raises(RuntimeError, match="async API"):
        double.enqueue_sync(1)  # inside a running loop: refused rather than deadlocking


async def test_close_also_closes_the_sync_apis_connection(make_app: Callable[..., App]) -> None:
    own = make_app()

    @own.job(queue="q")
    def noop() -> None: ...

    async with own:
        handle = await asyncio.to_thread(noop.enqueue_sync)
        assert (await handle.state()) == JobState.WAITING
        assert own.portal.loop is not None
    # The portal thread and its connection are gone, so the App counts as closed again.
    assert own.portal.loop is None
    own.configure(max_payload_bytes=1000)
    assert own.settings.max_payload_bytes == 1000


async def test_priority_orders_claims(app: App) -> None:
    order: list[str] = []

    @app.job(queue="q")
    async def step(label: str) -> None:
        order.append(label)

    for label, prio in [
        ("low", 1000),
        ("normal-1", 500),
        ("critical", 0),
        ("normal-2", 500),
        ("high", 100),
    ]:
        await step.with_options(priority=prio).enqueue(label)

    async with running_worker(app, ["q"], concurrency=1):
        await wait_until(lambda: len(order) == 5, what="five jobs")
    assert order == ["critical", "high", "normal-1", "normal-2", "low"]

    with pytest.raises(ConfigError, match="priority"):
        step.with_options(priority=5000)


async def test_delay_and_run_at(app: App, raw: redis.Redis, prefix: str) -> None:
    ran: dict[str, float] = {}

    @app.job(queue="q")
    async def ping(label: str) -> None:
        ran[label] = time.monotonic()

    start = time.monotonic()
    later = await ping.with_options(delay=timedelta(milliseconds=700)).enqueue("delay")
    at = datetime.now(UTC) + timedelta(milliseconds=700)
    scheduled = await ping.with_options(run_at=at).enqueue("run_at")
    past = await ping.with_options(run_at=datetime.now(UTC) - timedelta(hours=1)).enqueue("past")
    assert (await later.state()) == JobState.DELAYED
    assert (await scheduled.state()) == JobState.DELAYED
    assert (await past.state()) == JobState.WAITING
    counts = await app.queue("q").counts()
    assert (counts.delayed, counts.waiting) == (2, 1)

    with pytest.raises(ConfigError, match="timezone-aware"):
        await ping.with_options(run_at=datetime.now() + timedelta(seconds=1)).enqueue("naive")
    with pytest.raises(ConfigError, match="not both"):
        ping.with_options(delay=timedelta(seconds=1), run_at=at).with_options()
    assert len([k for k in keys_of(raw, prefix) if ":j:" in k]) == 3

    async with running_worker(app, ["q"]):
        await wait_until(lambda: len(ran) == 3, timeout=10, what="all three jobs")
    assert ran["past"] - start < 0.6
    assert ran["delay"] - start >= 0.6
    assert ran["run_at"] - start >= 0.6
    info = await wait_state(app, "q", later.id, JobState.COMPLETED)
    assert info.started_at is not None and info.created_at is not None
    assert info.started_at - info.created_at >= timedelta(milliseconds=650)


async def test_group_function_errors_are_payload_errors(
    app: App, raw: redis.Redis, prefix: str
) -> None:
    @app.job(queue="q", group=lambda shop: shop.split("@")[1])
    async def sync_shop(shop: str) -> None: ...

    @app.job(queue="q", group=lambda tenant: tenant)
    async def per_tenant(tenant: str) -> None: ...

    with pytest.raises(PayloadError, match="group function of job 'sync_shop' raised IndexError"):
        await sync_shop.enqueue("no-at-sign")
    with pytest.raises(PayloadError, match="non-empty"):
        await per_tenant.enqueue("")
    with pytest.raises(PayloadError, match="at most 128"):
        await per_tenant.enqueue("t" * 129)
    with pytest.raises(ConfigError):
        per_tenant.with_options(group="")
    with pytest.raises(ConfigError):
        per_tenant.with_options(group="g" * 200)
    assert job_keys(raw, prefix) == []

    handle = await sync_shop.enqueue("orders@acme")
    assert (await handle.info()).group == "acme"
    fixed = await per_tenant.with_options(group="override").enqueue("t1")
    assert (await fixed.info()).group == "override"
