"""The operator CLI as users run it (a subprocess, from a directory without the job code):
every read command's --json is parsed, destructive commands confirm, exit codes hold."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from corral import App, Fatal, JobFailed, RetryPolicy
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._cli import Cli

JOBS_MODULE = """
from corral import App, Fatal, RetryPolicy
app = App.from_env()

@app.job(queue="shop", retry=RetryPolicy(attempts=1), group=lambda order: order.split(":")[0])
async def sync_order(order: str, amount: int = 0) -> str:
    if order.endswith("!"):
        raise Fatal("rejected " + order)
    return order
"""


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


def make_app(app: App):  # type: ignore[no-untyped-def]
    @app.job(queue="shop", retry=RetryPolicy(attempts=1), group=lambda order: order.split(":")[0])
    async def sync_order(order: str, amount: int = 0) -> str:
        if order.endswith("!"):
            raise Fatal("rejected " + order)
        return order

    return sync_order


async def test_read_commands_speak_json(app: App, cli) -> None:  # type: ignore[no-untyped-def]
    job = make_app(app)
    ok = await job.enqueue("acme:1")
    bad = await job.enqueue("bolt:2!")
    later = await job.with_options(delay=timedelta(hours=1)).enqueue("acme:3")
    async with running_worker(app, ["shop"]):
        await ok.result(timeout=10)
        with pytest.raises(JobFailed):
            await bad.result(timeout=10)

    queues = cli("queue", "ls", "--json")
    assert queues[0]["queue"] == "shop"
    assert (queues[0]["completed"], queues[0]["dead"], queues[0]["delayed"]) == (1, 1, 1)
    assert cli("info", "--json") == queues

    assert [j["id"] for j in cli("jobs", "ls", "shop", "--state", "delayed", "--json")] == [
        later.id
    ]
    shown = cli("jobs", "show", "shop", ok.id, "--json")
    assert (shown["state"], shown["result"], shown["payload"]) == (
        "completed",
        "acme:1",
        {"order": "acme:1", "amount": 0},
    )
    found = cli("jobs", "find", "shop", "--group", "bolt", "--since", "1h", "--json")
    assert [j["id"] for j in found] == [bad.id]
    assert (
        cli("jobs", "find", "shop", "--error", "Fatal", "--state", "dead", "--json")[0][
            "dead_reason"
        ]
        == "fatal"
    )

    dead = cli("dlq", "ls", "shop", "--json")
    assert [d["id"] for d in dead] == [bad.id]
    assert cli("dlq", "ls", "shop", "--count", "--json") == {"queue": "shop", "count": 1}
    detail = cli("dlq", "show", "shop", bad.id, "--json")
    assert detail["errors"][0]["message"] == "rejected bolt:2!"
    human = cli("dlq", "ls", "shop")
    assert "[fatal]" in human.stdout  # reasons are shown, not eaten as markup

    cli("jobs", "show", "shop", "missing", code=1)
    cli("dlq", "show", "shop", ok.id, code=1)  # completed, not dead
    cli("jobs", "ls", "shop", "--state", "nonsense", code=2)


async def test_actions_confirm_dry_run_and_act(app: App, cli) -> None:  # type: ignore[no-untyped-def]
    job = make_app(app)
    for i in range(3):
        await job.enqueue(f"acme:{i}!")
    waiting = [await job.enqueue(f"cedar:{i}") for i in range(4)]
    async with running_worker(app, ["shop"]):
        for h in waiting:
            await h.result(timeout=10)
    pending = [await job.enqueue(f"dune:{i}") for i in range(5)]
    delayed = await job.with_options(delay=timedelta(hours=1)).enqueue("dune:late")

    dry = cli("dlq", "replay", "shop", "--all", "--dry-run", "--json")
    assert (dry["would_replay"], dry["dry_run"], len(dry["jobs"])) == (3, True, 3)
    refused = cli("dlq", "replay", "shop", "--all", code=2)
    assert "--yes" in refused.stderr
    assert cli("dlq", "replay", "shop", "--all", "--yes", "--json") == {
        "replayed": 3,
        "matched": 3,
        "rejected": [],
    }
    assert (await app.queue("shop").counts()).dead == 0

    assert cli("jobs", "promote", "shop", delayed.id, "--json") == {
        "id": delayed.id,
        "promoted": True,
    }
    cli("jobs", "promote", "shop", delayed.id, code=4)  # no longer delayed
    assert cli("jobs", "priority", "shop", pending[4].id, "0", "--json")["changed"] is True
    first = cli("jobs", "ls", "shop", "--state", "waiting", "--oldest", "--limit", "1", "--json")
    assert first[0]["id"] == pending[4].id

    assert (
        cli("jobs", "cancel", "shop", pending[0].id, "--reason", "test", "--yes", "--json")[
            "outcome"
        ]
        == "cancelled"
    )
    assert cli("jobs", "cancel", "shop", "--group", "dune", "--dry-run", "--json") == {
        "would_cancel": 5,
        "dry_run": True,
    }
    assert cli("jobs", "cancel", "shop", "--group", "dune", "--yes", "--json") == {"cancelled": 5}
    assert cli("jobs", "retry", "shop", pending[0].id, "--json") == {
        "id": pending[0].id,
        "retried": True,
    }
    assert cli("jobs", "rm", "shop", pending[0].id, "--yes", "--json") == {
        "id": pending[0].id,
        "removed": True,
    }
    cli("jobs", "rm", "shop", pending[0].id, "--yes", code=1)

    assert cli("queue", "pause", "shop", "--json") == {"queue": "shop", "paused": True}
    assert (await app.queue("shop").counts()).paused
    assert cli("queue", "resume", "shop", "--json") == {"queue": "shop", "paused": False}
    assert cli("queue", "drain", "shop", "--dry-run", "--json")["would_delete"] == 3
    assert cli("queue", "drain", "shop", "--yes", "--json") == {"queue": "shop", "deleted": 3}
    assert (
        cli(
            "queue",
            "clean",
            "shop",
            "--state",
            "completed",
            "--older-than",
            "0s",
            "--dry-run",
            "--json",
        )["would_delete"]
        == 4
    )
    assert cli("queue", "clean", "shop", "--older-than", "0s", "--yes", "--json")["deleted"] == 4
    assert cli("dlq", "purge", "shop", "--all", "--yes", "--json") == {"deleted": 5}
    assert cli("queue", "obliterate", "shop", "--yes", "--json")["deleted_keys"] > 0
    assert cli("queue", "ls", "--json") == []


async def test_enqueue_and_edited_replay_validate_against_the_model(app: App, cli) -> None:  # type: ignore[no-untyped-def]
    app_dir = cli.app_dir
    made = cli(
        "enqueue",
        "sync_order",
        '{"order": "acme:9", "amount": 5}',
        "--app",
        "shopapp:app",
        "--job-id",
        "order-9",
        "--json",
        cwd=app_dir,
    )
    assert made == {"id": "order-9", "queue": "shop", "created": True}
    again = cli(
        "enqueue",
        "sync_order",
        "--payload",
        '{"order": "acme:9"}',
        "--app",
        "shopapp:app",
        "--job-id",
        "order-9",
        "--json",
        cwd=app_dir,
    )
    assert again["created"] is False
    bad = cli(
        "enqueue",
        "sync_order",
        "--payload",
        '{"order": 5, "amount": "lots"}',
        "--app",
        "shopapp:app",
        cwd=app_dir,
        code=2,
    )
    assert "amount" in bad.stderr
    cli("enqueue", "no_such_job", "--payload", "{}", "--app", "shopapp:app", cwd=app_dir, code=2)
    cli("enqueue", "sync_order", "--payload", '{"order": "x"}', code=2)  # no --app: cannot validate

    job = make_app(app)
    dead = await job.enqueue("bolt:1!")
    async with running_worker(app, ["shop"]):
        with pytest.raises(JobFailed):
            await dead.result(timeout=10)
        refused = cli(
            "dlq",
            "replay",
            "shop",
            dead.id,
            "--payload",
            '{"order": ["x"]}',
            "--app",
            "shopapp:app",
            cwd=app_dir,
            code=2,
        )
        assert "order" in refused.stderr
        assert (await dead.info()).state == "dead"
        cli(
            "dlq", "replay", "shop", dead.id, "--payload", '{"order": "bolt:1"}', code=2
        )  # no --app
        out = cli(
            "dlq",
            "replay",
            "shop",
            dead.id,
            "--payload",
            '{"order": "bolt:1"}',
            "--app",
            "shopapp:app",
            "--json",
            cwd=app_dir,
        )
        assert out == {"id": dead.id, "replayed": True}
        assert await dead.result(timeout=10) == "bolt:1"


async def test_unknown_queues_and_jobs_say_so_and_exit_not_found(cli, app: App) -> None:  # type: ignore[no-untyped-def]
    """Issue 11.6: a typo never pauses or drains a phantom queue, an unknown id is not "not
    delayed"; every command names what is missing and exits 1."""
    make_app(app)
    await app.registry["sync_order"].enqueue("acme:1")
    for args in (
        ("queue", "pause", "shpo"),
        ("queue", "resume", "shpo"),
        ("queue", "drain", "shpo", "--yes"),
        ("queue", "clean", "shpo", "--yes"),
        ("queue", "obliterate", "shpo", "--yes"),
        ("jobs", "ls", "shpo"),
        ("jobs", "find", "shpo", "--name", "x"),
        ("dlq", "ls", "shpo"),
        ("dlq", "purge", "shpo", "--all", "--yes"),
    ):
        proc = cli(*args, code=1)
        assert "no queue named 'shpo' (known: shop)" in proc.stderr, (args, proc.stderr)
    for args in (
        ("jobs", "promote", "shop", "nope"),
        ("jobs", "retry", "shop", "nope"),
        ("jobs", "priority", "shop", "nope", "3"),
        ("jobs", "rm", "shop", "nope", "--yes"),
        ("jobs", "show", "shop", "nope"),
        ("dlq", "replay", "shop", "nope", "--yes"),
    ):
        proc = cli(*args, code=1)
        assert "no job nope in queue 'shop'" in proc.stderr, (args, proc.stderr)
    assert [row["queue"] for row in cli("queue", "ls", "--json")] == ["shop"]
    assert cli("queue", "create", "later", "--json") == {"queue": "later", "created": True}
    assert cli("queue", "pause", "later", "--json") == {"queue": "later", "paused": True}
    assert [row["queue"] for row in cli("queue", "ls", "--json")] == ["later", "shop"]


def test_a_worker_warns_once_about_a_queue_its_app_has_no_job_for(cli) -> None:  # type: ignore[no-untyped-def]
    proc = cli("worker", "shopapp:app", "-q", "shop", "-q", "shpo", "--burst", cwd=cli.app_dir)
    assert proc.stderr.count("'shpo': this App defines no job for it") == 1, proc.stderr
    assert "'shop': this App" not in proc.stderr
