"""``corral.testing.job_context``: a handler that calls ``current_job()`` runs in a unit test
without a server, and what it reported is there to assert on."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from corral import App, CorralError, current_job
from corral.testing import FakeJobContext, job_context

app = App.from_url("redis://127.0.0.1:1/0")  # never connected: the handlers are called directly


@app.job(queue="reports")
def build_report(rows: int) -> int:
    job = current_job()
    job.log(f"attempt {job.attempt} of {job.max_attempts} for {job.group}")
    done = 0
    for step in range(rows):
        if job.cancelled:
            job.log("cancelled: stopping early")
            break
        done += 1
        job.progress(round(100 * (step + 1) / rows))
    return done


@app.job(queue="reports")
async def summarise(text: str) -> str:
    current_job().progress({"stage": "summarising"})
    await asyncio.sleep(0)
    current_job().log("done")
    return text.upper()


def test_a_sync_handler_reports_into_the_fake_context() -> None:
    with job_context(attempt=2, max_attempts=5, group="acme", name="build_report") as ctx:
        assert build_report(4) == 4
    assert isinstance(ctx, FakeJobContext)
    assert ctx.progress_values == [25, 50, 75, 100]
    assert ctx.last_progress == 100
    assert ctx.logs == ["attempt 2 of 5 for acme"]
    with pytest.raises(CorralError, match="outside a running job handler"):
        current_job()  # the block is over


def test_a_handler_sees_its_cancellation() -> None:
    with job_context(cancelled=True) as ctx:
        assert build_report(10) == 0
    assert ctx.progress_values == []
    assert ctx.logs[-1] == "cancelled: stopping early"


def test_cancelled_while_running_in_a_thread() -> None:
    started, stop = threading.Event(), threading.Event()

    def handler() -> int:
        job = current_job()
        started.set()
        stop.wait(5)
        return 1 if job.cancelled else 0

    with job_context() as ctx:
        result: list[int] = []
        # a thread does not inherit context variables: hand it the context, as the worker does
        context = contextvars.copy_context()
        worker = threading.Thread(target=lambda: result.append(context.run(handler)))
        worker.start()
        started.wait(5)
        ctx.cancelled = True
        stop.set()
        worker.join(5)
    assert result == [1]


async def test_an_async_handler_awaited_in_the_block() -> None:
    with job_context(id="job-7") as ctx:
        assert await summarise("hi") == "HI"
        assert current_job().id == "job-7"
    assert ctx.progress_values == [{"stage": "summarising"}]
    assert ctx.logs == ["done"]


def test_nested_contexts_restore_the_outer_one() -> None:
    with job_context(id="outer") as outer:
        with job_context(id="inner"):
            current_job().log("to the inner")
        current_job().log("to the outer")
    assert outer.logs == ["to the outer"]
