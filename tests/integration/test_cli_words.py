"""Issue 13, "The CLI's words": the operator CLI as a newcomer and an on-call engineer use it,
run as a subprocess against a real server (tests/integration/_cli.py)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from corral import App, Fatal, JobFailed, RetryPolicy
from corral.embedded import EmbeddedServer
from corral.jobs import JobFunction
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
