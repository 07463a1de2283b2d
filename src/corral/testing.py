"""Helpers for testing code that uses Corral: a private server and a worker you can drive.

Use them in your own tests::

    from corral.testing import private_server, running_worker

    with private_server() as server:
        app = App.from_url(server.url)
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any

from corral.app import App
from corral.embedded import EmbeddedServer, ServerOptions
from corral.worker import Worker


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
