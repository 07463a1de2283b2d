"""A worker's logs as a platform reads them (issue 13, "Logs a platform can use"): one line per
job outcome, plain one-line records with ISO-8601 times when stderr is not a terminal, JSON
with the job's fields as keys, and ``-v`` that shows Corral's debug records only."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from corral.embedded import EmbeddedServer
from tests.integration._cli import Cli

JOBS_MODULE = """
import logging
from datetime import timedelta
from corral import App, Fixed, RetryPolicy
app = App.from_env()
log = logging.getLogger("shopapp")

@app.job(queue="shop", group=lambda order: order.split(":")[0],
         retry=RetryPolicy(attempts=2, backoff=Fixed(timedelta(0))))  # burst runs it at once
async def sync_order(order: str) -> str:
    log.info("syncing %s", order)
    log.debug("details of %s", order)
    if order.endswith("!"):
        raise ValueError("rejected " + order)
    return order
"""
PLAIN = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (DEBUG|INFO|WARNING|ERROR) [\w.]+ ")


@pytest.fixture
def cli(server: EmbeddedServer, prefix: str, tmp_path: Path) -> Cli:
    return Cli(server, prefix, tmp_path, JOBS_MODULE)


def enqueue(cli: Cli, *orders: str) -> list[str]:
    ids = []
    for order in orders:
        out = cli("enqueue", "sync_order", json.dumps({"order": order}), "--app", "shopapp:app",
                  "--json", cwd=cli.app_dir)  # fmt: skip
        ids.append(out["id"])
    return ids


def work(cli: Cli, *options: str, env: dict[str, str] | None = None) -> list[str]:
    proc = cli("worker", "shopapp:app", "--burst", *options, cwd=cli.app_dir, env=env)
    return proc.stderr.splitlines()


def test_json_logs_have_one_line_per_outcome_with_the_jobs_fields(cli: Cli) -> None:
    good, bad = enqueue(cli, "acme.myshopify.com:1", "bolt.myshopify.com:2!")
    records = [json.loads(line) for line in work(cli, "--log-format", "json")]
    per_job = [r for r in records if "outcome" in r]
    outcomes = {(r["job_id"], r["outcome"]) for r in per_job}
    assert outcomes == {(good, "completed"), (bad, "retried"), (bad, "dead")}
    done = next(r for r in per_job if r["job_id"] == good)
    assert done["level"] == "info" and done["logger"].startswith("corral.")
    assert (done["queue"], done["job"], done["group"]) == (
        "shop",
        "sync_order",
        "acme.myshopify.com",
    )
    assert (done["attempt"], done["max_attempts"]) == (1, 2)
    assert isinstance(done["duration_ms"], float) and done["duration_ms"] >= 0
    assert re.match(r"\d{4}-\d\d-\d\dT.*Z$", done["time"])
    assert any("ready" in r["message"] or "serving" in r["message"] for r in records)


def test_without_a_terminal_records_are_plain_single_lines(cli: Cli) -> None:
    shop = "a-very-long-shop-name-" * 4 + ".myshopify.com"  # a line far past 80 columns
    enqueue(cli, f"{shop}:1")
    lines = work(cli, env={"COLUMNS": "80"})
    assert lines and all(PLAIN.match(line) for line in lines), lines
    done = [line for line in lines if " completed shop/sync_order " in line]
    assert len(done) == 1 and done[0].endswith("ms") and f"group {shop}" in done[0], lines


def test_the_handlers_own_info_records_show_in_the_same_format(cli: Cli) -> None:
    enqueue(cli, "acme.myshopify.com:6")
    lines = work(cli, "--log-format", "plain")
    assert any(
        PLAIN.match(line) and " INFO shopapp syncing acme.myshopify.com:6" in line for line in lines
    ), lines
    assert not any("details of" in line for line in lines), lines


def test_verbose_shows_corrals_debug_records_only(cli: Cli) -> None:
    enqueue(cli, "acme.myshopify.com:3")
    lines = work(cli, "-v", "--log-format", "plain")
    debug = [line for line in lines if " DEBUG " in line]
    assert any(" started shop/sync_order " in line for line in debug), lines
    assert all(line.split()[2].startswith("corral") for line in debug), lines
    assert not any(line.split()[2].startswith(("redis", "asyncio")) for line in lines), lines


def test_the_format_comes_from_the_environment_and_bad_values_are_refused(cli: Cli) -> None:
    enqueue(cli, "acme.myshopify.com:4")
    lines = work(cli, env={"CORRAL_LOG_FORMAT": "json"})
    assert all(line.startswith("{") for line in lines), lines
    proc = cli("worker", "shopapp:app", "--burst", "--log-format", "xml", cwd=cli.app_dir, code=2)
    assert "log format must be one of auto, rich, plain, json" in proc.stderr


def test_warning_level_leaves_out_the_line_per_job(cli: Cli) -> None:
    enqueue(cli, "acme.myshopify.com:5")
    assert work(cli, "--log-level", "warning", "--log-format", "plain") == []
