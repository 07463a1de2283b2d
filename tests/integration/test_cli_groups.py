"""Issue 13: ``corral groups ls|show|pause|resume|limit`` run as users do (a subprocess, from a
directory without the job code) against a real server: what they show, what they change, what
a dry run leaves alone, and the exit codes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, JobState, RateLimit
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App
app = App.from_env()
"""


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


def define(app: App):  # type: ignore[no-untyped-def]
    @app.job(queue="shop", group=lambda order: order.split(":")[0])
    async def sync_order(order: str) -> str:
        return order

    return sync_order


async def test_list_and_show_groups(app: App, cli: Cli) -> None:
    sync_order = define(app)
    for order in ("acme:1", "acme:2", "bolt:1", "cedar:1"):
        await sync_order.enqueue(order)
    await app.queue("shop").group("bolt").set_limits(concurrency=2, weight=3)

    listed = cli("groups", "ls", "shop", "--json")
    assert [g["group"] for g in listed] == ["acme", "bolt", "cedar"]
    acme, bolt, _ = listed
    assert (acme["queue"], acme["waiting"], acme["active"]) == ("shop", 2, 0)
    assert acme["state"] == "ready"
    assert (bolt["concurrency"], bolt["weight"], bolt["rate"]) == (2, 3.0, None)
    assert [g["group"] for g in cli("groups", "ls", "shop", "--limit", "2", "--json")] == [
        "acme",
        "bolt",
    ]
    table = cli("groups", "ls", "shop", "--limit", "2").stdout
    assert "acme" in table and "cedar" not in table and "--limit for more" in table

    shown = cli("groups", "show", "shop", "bolt", "--json")
    assert (shown["group"], shown["waiting"], shown["concurrency"]) == ("bolt", 1, 2)
    text = cli("groups", "show", "shop", "bolt").stdout
    assert "concurrency 2, rate -, weight 3" in text and "1 waiting, 0 running" in text

    missing = cli("groups", "show", "shop", "nobody", code=1)
    assert "no group 'nobody' in queue 'shop'" in missing.stderr
    assert cli("groups", "ls", "shop", "--json", env={"COLUMNS": "80"})  # still JSON, whole


async def test_pause_and_resume_a_group(app: App, cli: Cli) -> None:
    sync_order = define(app)
    held = [await sync_order.enqueue(f"acme:{i}") for i in range(3)]
    other = await sync_order.enqueue("bolt:1")

    dry = cli("groups", "pause", "shop", "acme", "--dry-run", "--json")
    assert (dry["dry_run"], dry["waiting"]) == (True, 3)
    assert (await app.queue("shop").group("acme").state()).paused is False  # nothing changed

    assert cli("groups", "pause", "shop", "acme", "--json")["paused"] is True
    async with running_worker(app, ["shop"]):
        assert await other.result(timeout=10) == "bolt:1"
        for h in held:
            assert await h.state() == JobState.WAITING
        ls = {g["group"]: g for g in cli("groups", "ls", "shop", "--json")}
        assert ls["acme"]["state"] == "paused"

        said = cli("groups", "resume", "shop", "acme").stdout
        assert "acme: resumed" in said
        for h in held:
            assert await h.result(timeout=10)

    # a paused group with no jobs left is still listed: it keeps its pause
    cli("groups", "pause", "shop", "acme")
    assert [g["group"] for g in cli("groups", "ls", "shop", "--json")] == ["acme"]
    # a tenant can be paused before its first job, and is told so
    ahead = cli("groups", "pause", "shop", "newcomer").stdout
    assert "the queue does not know it yet" in ahead
    assert (await app.queue("shop").group("newcomer").state()).paused is True


async def test_limit_a_group(app: App, cli: Cli) -> None:
    sync_order = define(app)
    await sync_order.enqueue("acme:1")
    group = app.queue("shop").group("acme")

    dry = cli("groups", "limit", "shop", "acme", "--concurrency", "2", "--dry-run", "--json")
    assert (dry["set"], dry["dry_run"]) == ({"concurrency": 2}, True)
    assert (await group.state()).concurrency is None

    done = cli(
        "groups", "limit", "shop", "acme",
        "--concurrency", "2", "--rate", "40/60s", "--weight", "2.5", "--json",
    )  # fmt: skip
    assert done["after"] == {"concurrency": 2, "rate": {"limit": 40, "per": 60.0}, "weight": 2.5}
    assert done["before"] == {"concurrency": None, "rate": None, "weight": None}
    state = await group.state()
    assert (state.concurrency, state.rate, state.weight) == (
        2,
        RateLimit(40, timedelta(seconds=60)),
        2.5,
    )
    text = cli("groups", "limit", "shop", "acme", "--rate", "5/500ms").stdout
    assert "rate 5/500ms" in text and "was concurrency 2, rate 40/1m" in text

    reset = cli("groups", "limit", "shop", "acme", "--reset", "--weight", "2", "--json")
    assert reset["reset"] == ["concurrency", "rate"]
    assert reset["after"] == {"concurrency": None, "rate": None, "weight": 2.0}
    cli("groups", "limit", "shop", "acme", "--reset")
    state = await group.state()
    assert (state.concurrency, state.rate, state.weight) == (None, None, None)

    for bad in (
        ("--rate", "40"),
        ("--rate", "x/1s"),
        ("--rate", "4/forever"),
        ("--concurrency", "0"),
        ("--weight", "0"),
        (),
    ):
        cli("groups", "limit", "shop", "acme", *bad, code=2)


async def test_an_unknown_queue_is_refused_and_not_created(app: App, cli: Cli) -> None:
    define(app)
    await app.queue("shop").create()
    for args in (
        ("ls", "shpo"),
        ("show", "shpo", "acme"),
        ("pause", "shpo", "acme"),
        ("resume", "shpo", "acme"),
        ("limit", "shpo", "acme", "--concurrency", "2"),
        ("limit", "shpo", "acme", "--weight", "2", "--dry-run"),
    ):
        failed = cli("groups", *args, code=1)
        assert "no queue named 'shpo' (known: shop)" in failed.stderr
    assert not await app.queue("shpo").exists()
