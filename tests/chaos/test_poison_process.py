"""Poison input not covered by tests/integration/test_poison.py: a process-mode handler raising
an exception that cannot be pickled. The job is dead with a readable error; the worker (and
its process pool) keeps serving."""

from __future__ import annotations

import pickle
from collections.abc import Awaitable, Callable

import pytest

from corral import App, JobFailed
from corral.embedded import EmbeddedServer
from corral.testing import running_worker
from tests.jobs.chaos_jobs import Unpicklable, echo_pid, raise_local_class, raise_unpicklable


async def test_unpicklable_exception_in_process_mode(
    fresh_server: Callable[..., EmbeddedServer],
    chaos_app: Callable[[str], Awaitable[App]],
) -> None:
    with pytest.raises(TypeError):
        pickle.dumps(Unpicklable("x"))  # the premise
    app = await chaos_app(fresh_server().url)
    async with running_worker(app, ["chaos-proc"], process_slots=1) as worker:
        locked = await raise_unpicklable.enqueue("holds a lock")
        local = await raise_local_class.enqueue("defined inside the handler")
        failures = []
        for handle in (locked, local):
            with pytest.raises(JobFailed) as failed:
                await handle.result(timeout=30)
            failures.append(failed.value)
        first_pid = await (await echo_pid.enqueue(1)).result(timeout=30)
        assert await (await echo_pid.enqueue(2)).result(timeout=30) == first_pid

    assert [f.reason for f in failures] == ["exhausted", "exhausted"]
    assert failures[0].error_type == "tests.jobs.chaos_jobs.Unpicklable"
    assert failures[0].error_message == "holds a lock"
    assert (failures[1].error_type or "").endswith("raise_local_class.<locals>.Local")
    assert failures[1].error_message == "defined inside the handler"
    info = await locked.info()
    assert "Traceback" in info.errors[0].traceback and "Unpicklable" in info.errors[0].traceback
    assert worker.stats.dead == 2
