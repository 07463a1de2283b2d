"""Helpers for testing code that uses Corral (docs/testing.md): a fake job context to call a
handler without a server, a private server, and a worker you can drive.

Use them in your own tests::

    from corral.testing import job_context, private_server, running_worker

    with job_context(attempt=2) as ctx:
        my_handler(...)
    assert ctx.progress_values == [50, 100]

    with private_server() as server:
        app = App.from_url(server.url)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.app import App
from corral.context import JobContext, reset_current, set_current
from corral.embedded import EmbeddedServer, ServerOptions
from corral.worker import Worker


@dataclass(slots=True)
class FakeJobContext(JobContext):
    """What ``current_job()`` returns inside ``job_context()``: the job's facts as you chose
    them, and what the handler reported, kept here instead of sent to Redis."""

    progress_values: list[Any] = field(default_factory=list)
    logs: list[str] = field(default_factory=list)

    def record(self, progress: Any, line: str) -> None:
        """The writer: what a worker would send to Redis (a progress of None and an empty
        line are not sent)."""
        if progress is not None:
            self.progress_values.append(progress)
        if line:
            self.logs.append(line)


@contextlib.contextmanager
def job_context(
    *,
    id: str = "test-job",
    queue: str = "default",
    name: str = "test",
    attempt: int = 1,
    max_attempts: int = 3,
    group: str | None = None,
    reschedules: int = 0,
    cancelled: bool = False,
) -> Iterator[FakeJobContext]:
    """Run a handler as if a worker ran it, without a server: inside the block
    ``current_job()`` is a :class:`FakeJobContext` with these facts (set ``ctx.cancelled``
    to tell a handler it was cancelled); ``progress_values`` and ``logs`` record its reports.
    Async handlers awaited inside the block (or tasks created in it) see it too."""
    ctx = FakeJobContext(
        id=id,
        queue=queue,
        name=name,
        attempt=attempt,
        max_attempts=max_attempts,
        group=group,
        writer=_unset_writer,
        reschedules=reschedules,
        cancelled=cancelled,
    )
    ctx.writer = ctx.record
    token = set_current(ctx)
    try:
        yield ctx
    finally:
        reset_current(token)


def _unset_writer(progress: Any, line: str) -> None:  # replaced before the context is used
    raise AssertionError("FakeJobContext.writer was not set")


@contextlib.contextmanager
def private_server(
    binary: Path | None = None, options: ServerOptions | None = None
) -> Iterator[EmbeddedServer]:
    """A throwaway Redis-compatible server (the embedded Valkey unless ``binary`` is given)."""
    server = EmbeddedServer(options, binary=binary).start()
    try:
        yield server
    finally:
        server.stop()


@contextlib.asynccontextmanager
async def running_worker(
    app: App, queues: Sequence[str] | None = None, **kwargs: Any
) -> AsyncIterator[Worker]:
    """Run a worker in the background for the duration of the block, then stop it."""
    worker = Worker(app, queues, **kwargs)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await task
