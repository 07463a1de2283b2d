"""Issue 13, "The CLI's words": the operator CLI as a newcomer and an on-call engineer use it,
run as a subprocess against a real server (tests/integration/_cli.py)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from corral import App, Fatal, JobFailed, JobFilter, RetryPolicy
from corral.definition import JobFunction
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.integration._cli import Cli

# The job code as the user's project has it (for --app); the test process defines the same
# jobs on its own App (define_jobs) to enqueue them and run a worker.
JOBS_MODULE = """
import asyncio
from corral import App, Fatal, RetryPolicy
app = App.from_env()

@app.job(queue="shop", retry=RetryPolicy(attempts=1), group=lambda order: order.split(":")[0])
async def sync_order(order: str, amount: int = 0) -> str:
    return order

@app.job(queue="shop", retry=RetryPolicy(attempts=1))
async def slow_sync(seconds: float) -> None:
    await asyncio.sleep(seconds)
"""


class UpstreamError(ConnectionError):
    """What a user's HTTP client raises: not a builtin, not Corral's."""


@dataclass
class Jobs:
    sync_order: JobFunction[..., str]
    slow_sync: JobFunction[..., None]


def define_jobs(app: App) -> Jobs:
    @app.job(queue="shop", retry=RetryPolicy(attempts=1), group=lambda order: order.split(":")[0])
    async def sync_order(order: str, amount: int = 0) -> str:
        if order.startswith("busy"):
            raise UpstreamError("HTTP 429 Too Many Requests")
        if order.endswith("!"):
            raise Fatal("rejected " + order)
        if amount < 0:
            raise ValueError(f"negative amount {amount}")
        return order

    @app.job(queue="shop", retry=RetryPolicy(attempts=1), timeout=timedelta(milliseconds=200))
    async def slow_sync(seconds: float) -> None:
        await asyncio.sleep(seconds)

    return Jobs(sync_order, slow_sync)


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


async def run_until_dead(app: App, *handles: Any) -> None:
    async with running_worker(app, ["shop"]):
        for h in handles:
            with pytest.raises(JobFailed):
                await h.result(timeout=10)


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {r["id"] for r in rows}


# -- 2. --error matches subclasses; --message --------------------------------------------------


async def test_error_filters_match_subclasses_and_messages(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    timed_out = await jobs.slow_sync.enqueue(5.0)  # Corral's JobTimeout, a TimeoutError
    limited = await jobs.sync_order.enqueue("busy:1")  # UpstreamError, a ConnectionError
    refused = await jobs.sync_order.enqueue("acme:2!")  # Fatal
    await run_until_dead(app, timed_out, limited, refused)

    # the runbook's `--error TimeoutError` finds Corral's own timeouts
    found = cli("dlq", "ls", "shop", "--error", "TimeoutError", "--json")
    assert ids(found) == {timed_out.id}
    assert found[0]["error_type"] == "JobTimeout"
    assert "TimeoutError" in found[0]["error_types"]
    assert ids(cli("dlq", "ls", "shop", "--error", "ConnectionError", "--json")) == {limited.id}
    assert ids(cli("dlq", "ls", "shop", "--error", "UpstreamError", "--json")) == {limited.id}
    assert ids(cli("dlq", "ls", "shop", "--error", "OSError", "--json")) == {
        timed_out.id,
        limited.id,
    }
    assert ids(cli("dlq", "ls", "shop", "--message", "429", "--json")) == {limited.id}
    assert cli("dlq", "ls", "shop", "--message", "too many", "--count", "--json")["count"] == 1
    assert ids(
        cli("jobs", "find", "shop", "--error", "CorralError", "--state", "dead", "--json")
    ) == {timed_out.id, refused.id}
    assert (
        cli("dlq", "purge", "shop", "--error", "TimeoutError", "--dry-run", "--json")[
            "would_delete"
        ]
        == 1
    )
    assert (
        cli("dlq", "replay", "shop", "--message", "429", "--dry-run", "--json")["would_replay"] == 1
    )


# -- 3. an edit over a filtered set, validated per job ------------------------------------------

FIXES_MODULE = """
def clamp(payload):
    # acme's amounts were negated by a bug; bolt's cannot be repaired this way
    payload["amount"] = abs(payload["amount"]) if payload["order"].startswith("acme") else "?"
    return payload
"""


async def test_an_edit_replays_a_filtered_set_validating_each_job(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    acme = [await jobs.sync_order.enqueue(f"acme:{i}", amount=-(i + 1)) for i in range(3)]
    bolt = await jobs.sync_order.enqueue("bolt:1", amount=-7)
    await run_until_dead(app, *acme, bolt)
    (cli.app_dir / "fixes.py").write_text(FIXES_MODULE)
    replay = ("dlq", "replay", "shop", "--error", "ValueError")
    with_app = ("--app", "shopapp:app", "--yes")

    # an edit needs the job code to validate against, and one kind of edit at a time
    assert "--patch needs --app" in cli(*replay, "--patch", '{"amount": 1}', code=2).stderr
    both = cli(
        *replay, "--patch", "{}", "--edit", "fixes:clamp", *with_app, cwd=cli.app_dir, code=2
    )
    assert "not --patch and --edit" in both.stderr

    # a patch no job's model accepts: every job stays dead, each named with its field; exit 2
    proc = cli(
        *replay, "--patch", '{"amount": "lots"}', *with_app, "--json", cwd=cli.app_dir, code=2
    )
    report = json.loads(proc.stdout)
    assert (report["replayed"], report["matched"]) == (0, 4)
    assert {r["id"] for r in report["rejected"]} == {h.id for h in (*acme, bolt)}
    assert all(r["fields"] == ["amount"] for r in report["rejected"])
    assert (await app.queue("shop").counts()).dead == 4

    # a dry run validates the edit too, and replays nothing
    dry = cli(*replay, "--edit", "fixes:clamp", *with_app, "--dry-run", "--json", cwd=cli.app_dir)
    assert dry["would_replay"] == 3
    assert [(r["id"], r["fields"]) for r in dry["rejected"]] == [(bolt.id, ["amount"])]
    assert (await app.queue("shop").counts()).dead == 4

    # the function repairs acme's jobs; bolt's stays dead and is reported (id and field)
    proc = cli(*replay, "--edit", "fixes:clamp", *with_app, "--rate", "50", cwd=cli.app_dir, code=2)
    assert "replayed 3 job(s); 1 stay dead" in proc.stdout
    assert f"{bolt.id}: invalid payload for job 'sync_order': amount" in proc.stdout
    async with running_worker(app, ["shop"]):
        assert [await h.result(timeout=10) for h in acme] == ["acme:0", "acme:1", "acme:2"]
    assert [(await h.info()).payload["amount"] for h in acme] == [1, 2, 3]
    assert (await acme[0].info()).replays[-1].edited is True
    assert (await bolt.info()).state == "dead"

    # one job by id: an edit that does not validate exits 2 naming the field, then a patch
    one = ("dlq", "replay", "shop", bolt.id, *with_app)
    refused = cli(*one, "--edit", "fixes:clamp", cwd=cli.app_dir, code=2)
    assert "amount" in refused.stderr and (await bolt.info()).state == "dead"
    assert cli(*one, "--patch", '{"amount": 7}', "--json", cwd=cli.app_dir) == {
        "id": bolt.id,
        "replayed": True,
    }
    assert (await bolt.info()).payload == {"order": "bolt:1", "amount": 7}
    # a merge patch over what is left of a set: nothing now
    assert cli(*replay, "--patch", '{"amount": 7}', *with_app, "--json", cwd=cli.app_dir) == {
        "replayed": 0,
        "matched": 0,
        "rejected": [],
    }


async def test_the_python_api_edits_a_set_with_a_patch_or_a_function(app: App) -> None:
    jobs = define_jobs(app)
    handles = [await jobs.sync_order.enqueue(f"acme:{i}", amount=-1) for i in range(2)]
    handles.append(await jobs.sync_order.enqueue("bolt:9", amount=-1))
    await run_until_dead(app, *handles)
    dlq = app.queue("shop").dead_letters

    report = await dlq.replay(JobFilter(group="bolt"), edit={"amount": "x"})
    assert (report.replayed, report.matched) == (0, 1)
    assert report.rejected[0].id == handles[2].id and report.rejected[0].fields == ("amount",)

    def fix(payload: dict[str, Any]) -> dict[str, Any]:
        if payload["order"] == "acme:1":
            raise KeyError("no fix for acme:1")
        return {**payload, "amount": 1}

    report = await dlq.replay(JobFilter(group="acme"), edit=fix, by="oncall@test")
    assert (report.replayed, report.matched) == (1, 2)
    assert report.rejected[0].id == handles[1].id
    assert "the edit raised KeyError" in report.rejected[0].message
    assert (await handles[0].info()).replays[-1].by == "oncall@test"


# -- 1. enqueue: --payload (or an argument) in, --json out ---------------------------------------


def test_enqueue_reads_the_payload_and_prints_json(cli: Cli) -> None:
    app = ("--app", "shopapp:app")
    made = cli("enqueue", "sync_order", '{"order": "acme:1"}', *app, "--json", cwd=cli.app_dir)
    assert made["queue"] == "shop" and made["created"] is True
    piped = cli(
        "enqueue", "sync_order", "--payload", "-", *app, "--json", cwd=cli.app_dir,
        stdin='{"order": "acme:2", "amount": 3}',
    )  # fmt: skip
    assert piped["created"] is True
    human = cli("enqueue", "sync_order", "--payload", '{"order": "acme:3"}', *app, cwd=cli.app_dir)
    assert human.stdout.startswith("enqueued: ") and " on shop" in human.stdout
    twice = cli("enqueue", "sync_order", "{}", "--payload", "{}", *app, cwd=cli.app_dir, code=2)
    assert "not both" in twice.stderr
    not_object = cli("enqueue", "sync_order", "[1]", *app, cwd=cli.app_dir, code=2)
    assert "must be a JSON object" in not_object.stderr
    cli("enqueue", "sync_order", "--print-json", *app, cwd=cli.app_dir, code=2)  # gone
    assert cli("jobs", "ls", "shop", "--json")[0]["name"] == "sync_order"


# -- 4. consistent confirmations, dry runs that list, Ctrl-C that reports --------------------


def answer(cli: Cli, reply: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run with a terminal on stdin (so the command asks) and type ``reply``."""
    leader, follower = os.openpty()
    try:
        os.write(leader, reply.encode() + b"\n")
        return subprocess.run(
            [sys.executable, "-m", "corral", *args],
            env=cli.env,
            cwd=cli.bare,
            stdin=follower,
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        os.close(leader)
        os.close(follower)


async def test_one_job_actions_ask_and_dry_run_alike(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    waiting = await jobs.sync_order.enqueue("acme:1")
    done = await jobs.sync_order.enqueue("acme:2")
    async with running_worker(app, ["shop"]):
        await done.result(timeout=10)
    waiting = await jobs.sync_order.enqueue("acme:3")

    for verb, command in (("Cancel", "cancel"), ("Delete", "rm")):
        refused = cli("jobs", command, "shop", waiting.id, code=2)  # no terminal, no --yes
        assert f"{verb} job {waiting.id} (sync_order, waiting)?" in refused.stderr
        assert cli("jobs", command, "shop", waiting.id, "--dry-run", "--json") == {
            "id": waiting.id,
            "state": "waiting",
            "dry_run": True,
        }
        said_no = answer(cli, "n", "jobs", command, "shop", waiting.id)
        assert said_no.returncode == 4, said_no.stdout + said_no.stderr
        assert (await waiting.info()).state == "waiting"
    assert cli("jobs", "cancel", "shop", done.id, "--json", code=4).stdout  # ended: no question
    assert cli("jobs", "cancel", "shop", waiting.id, "--yes", "--json")["outcome"] == "cancelled"
    assert cli("jobs", "rm", "shop", waiting.id, "--yes", "--json")["removed"] is True


async def test_queue_clean_says_how_many_before_asking(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    async with running_worker(app, ["shop"]):
        for i in range(3):
            await (await jobs.sync_order.enqueue(f"acme:{i}")).result(timeout=10)
    said_no = answer(cli, "n", "queue", "clean", "shop", "--older-than", "0s")
    assert "Delete 3 completed job(s) of 'shop' older than 0s?" in said_no.stdout
    assert said_no.returncode == 4
    refused = cli("queue", "clean", "shop", "--older-than", "0s", code=2)
    assert "Delete 3 completed job(s)" in refused.stderr


async def test_dry_runs_list_the_jobs_they_would_touch(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    dead = [await jobs.sync_order.enqueue(f"acme:{i}!") for i in range(5)]
    await run_until_dead(app, *dead)
    for verb, command in (("replay", "replay"), ("delete", "purge")):
        out = cli("dlq", command, "shop", "--all", "--dry-run", "--limit", "2", "--json")
        assert out[f"would_{verb}"] == 5 and out["dry_run"] is True
        assert len(out["jobs"]) == 2 and {j["id"] for j in out["jobs"]} <= {h.id for h in dead}
        human = cli("dlq", command, "shop", "--all", "--dry-run", "--limit", "2")
        assert f"would {verb} 5 job(s) (listed: the first 2; --limit for more)" in human.stdout
        assert sum(h.id in human.stdout for h in dead) == 2
    assert (await app.queue("shop").counts()).dead == 5


async def test_ctrl_c_during_a_rate_limited_replay_says_what_was_done(
    app: App, cli: Cli, raw: Any, prefix: str
) -> None:
    jobs = define_jobs(app)
    dead = [await jobs.sync_order.enqueue(f"acme:{i}!") for i in range(12)]
    await run_until_dead(app, *dead)
    proc = cli.popen("dlq", "replay", "shop", "--all", "--rate", "4", "--yes")
    try:
        deadline = time.monotonic() + 30
        while (await app.queue("shop").counts()).dead == 12:  # the first batch went back
            assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
            await asyncio.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, out + err
    match = re.search(r"interrupted: replayed (\d+) of 12 job\(s\); the others are still dead", err)
    assert match, err
    replayed = int(match.group(1))
    assert 0 < replayed < 12
    assert (await app.queue("shop").counts()).dead == 12 - replayed  # the count is exact


# -- 6. tables at 80 columns: ids never wrap ----------------------------------------------------


@pytest.mark.parametrize("columns", ["80", "40"])
async def test_tables_keep_ids_whole_in_a_narrow_pipe(app: App, cli: Cli, columns: str) -> None:
    jobs = define_jobs(app)
    group = "a-very-long-tenant-name.myshopify.com"
    dead = [await jobs.sync_order.with_options(group=group).enqueue(f"busy:{i}") for i in range(3)]
    await run_until_dead(app, *dead)
    narrow = {"COLUMNS": columns}  # and stdout is a pipe
    for args in (
        ("dlq", "ls", "shop"),
        ("jobs", "ls", "shop", "--state", "dead"),
        ("jobs", "find", "shop", "--error", "ConnectionError"),
        ("dlq", "replay", "shop", "--all", "--dry-run"),
    ):
        out = cli(*args, env=narrow).stdout
        rows = [line for line in out.splitlines() if "sync_order" in line]
        assert len(rows) == 3, (args, out)
        for h in dead:  # each id whole on the line that names the job, so grep finds the row
            assert sum(h.id in row for row in rows) == 1, (args, out)
        if columns == "80":
            assert all(len(row) <= 84 for row in rows), (args, out)  # group and error give way
            assert all("…" in row for row in rows), (args, out)
    queues = cli("info", env=narrow).stdout
    assert any(line.split()[:2] == ["shop", "0"] for line in queues.splitlines()), queues


# -- 7. jobs show: JSON payloads, the user's frames, ISO times -----------------------------------


async def test_jobs_show_prints_pasteable_json_and_the_users_frames(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    failed = await jobs.sync_order.enqueue("busy:1", amount=3)
    await run_until_dead(app, failed)
    cli("dlq", "replay", "shop", failed.id, "--yes")
    await run_until_dead(app, failed)
    pending = await jobs.sync_order.with_options(delay=timedelta(hours=1)).enqueue("acme:1")
    cli("jobs", "cancel", "shop", pending.id, "--reason", "duplicate", "--yes")

    shown = cli("jobs", "show", "shop", failed.id, env={"COLUMNS": "60"}).stdout
    payload_line = next(line for line in shown.splitlines() if line.strip().startswith("payload"))
    payload = payload_line.split(None, 1)[1]
    assert json.loads(payload) == {"order": "busy:1", "amount": 3}  # JSON, whole on one line
    again = cli("enqueue", "sync_order", "--payload", payload, "--app", "shopapp:app", "--json",
                cwd=cli.app_dir)  # fmt: skip
    assert again["created"] is True
    assert "in sync_order" in shown and 'raise UpstreamError("HTTP 429' in shown
    assert "corral/worker/" not in shown  # the worker's frames above the handler are left out
    assert "frame(s) of Corral's worker above the handler not shown" in shown
    assert "replayed" in shown and "(was exhausted)" in shown

    data = cli("jobs", "show", "shop", failed.id, "--json")
    assert "corral/worker/" in data["errors"][0]["traceback"]  # --json keeps every frame
    for moment in (
        data["replays"][0]["at"],
        data["errors"][0]["at"],
        data["created_at"],
        cli("jobs", "show", "shop", pending.id, "--json")["cancellation"]["at"],
    ):
        assert datetime.fromisoformat(moment).tzinfo is not None, moment


# -- docs: the JSON shapes documented in docs/operations.md are the ones printed -----------------


def documented_fields(heading: str) -> set[str]:
    """The field names in the first column of the table under ``heading``."""
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    section = text.split(heading, 1)[1].split("\n#", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    return {name for row in rows for name in re.findall(r"`(\w+)`", row.split("|")[1])}


async def test_the_documented_json_shapes_are_the_printed_ones(app: App, cli: Cli) -> None:
    jobs = define_jobs(app)
    failed = await jobs.sync_order.enqueue("busy:1")
    await run_until_dead(app, failed)
    shown = cli("jobs", "show", "shop", failed.id, "--json")
    assert set(shown) == documented_fields("### `corral jobs show QUEUE JOB_ID --json`")
    assert set(cli("info", "--json")[0]) == documented_fields("### `corral info --json`")


async def test_show_json_prints_a_jobs_own_options(app: App, cli: Cli) -> None:
    """A job that carries its own timeout and backoff shows them as plain JSON numbers."""
    jobs = define_jobs(app)
    handle = await jobs.sync_order.with_options(timeout=timedelta(seconds=7)).enqueue("acme:own")
    shown = cli("jobs", "show", "shop", handle.id, "--json")
    assert shown["overrides"]["timeout"] == 7.0
    assert shown["overrides"]["backoff"]["kind"] == "exponential"
    plain = await jobs.sync_order.enqueue("acme:plain")
    assert cli("jobs", "show", "shop", plain.id, "--json")["overrides"] is None
