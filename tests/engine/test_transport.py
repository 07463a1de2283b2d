"""The shared pipelined connection: replies always reach the caller that sent the command."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from corral import App, Priority
from corral.engine import Engine
from corral.engine.transport import Transport, pack


def test_pack_sends_odd_argument_types_as_plain_values() -> None:
    assert pack([("SET", "k", Priority.HIGH)]) == pack([("SET", "k", 100)])
    with pytest.raises(TypeError, match="cannot send None"):
        pack([("SET", "k", None)])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="cannot send True"):
        pack([("SET", "k", True)])


async def test_a_command_that_cannot_be_encoded_leaves_the_connection_in_step(
    engine: Engine,
) -> None:
    transport = engine.transport
    assert isinstance(transport, Transport)
    assert await transport.execute("PING") == "PONG"
    with pytest.raises(TypeError):
        await transport.call(("ECHO", None))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        await transport.pipeline([("ECHO", "a"), ("ECHO", None)])  # type: ignore[list-item]
    # every later reply goes to its own caller, concurrent callers included
    words = [f"w{i}" for i in range(200)]
    replies = await asyncio.gather(*(transport.execute("ECHO", w) for w in words))
    assert replies == words


async def test_an_int_enum_argument_works_end_to_end(app: App) -> None:
    @app.job(queue="q")
    async def task(n: int) -> None: ...

    handle = await task.with_options(delay=timedelta(hours=1)).enqueue(1)
    assert await app.queue("q").set_priority(handle.id, Priority.HIGH) is True
    assert (await handle.info()).priority == Priority.HIGH
    transport = (await app.engine()).transport
    assert transport is not None
    assert await transport.execute("ECHO", "still in step") == "still in step"
