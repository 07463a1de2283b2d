"""What every part of the engine stands on: the clients, key names, the script call and the one
place where Redis errors become Corral errors.

Two connections per event loop: redis-py (``client``) for blocking calls (BZPOPMIN on markers,
BLPOP for results, pub/sub for cancellation) and plain reads; our pipelined ``Transport`` for
every script call, shared by all coroutines of the loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from corral.engine.batching import EnqueueBatcher
from corral.engine.errors import corral_error, redis_errors
from corral.engine.keys import QueueKeys, WorkerKeys, registry_key
from corral.engine.scripts import ScriptRunner
from corral.engine.transport import Transport
from corral.errors import ConnectionLost


class EngineBase:
    """Clients, key names and script calls for one Redis database and key prefix."""

    def __init__(
        self,
        client: Redis,
        transport: Transport,
        prefix: str = "corral",
        where: str = "the configured URL",
    ) -> None:
        self.client = client
        self.transport = transport
        self.prefix = prefix
        self.where = where  # the redacted URL, for error messages
        self.runner = ScriptRunner(transport)
        self.registry = registry_key(prefix)
        self.worker_keys = WorkerKeys(prefix)
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._batchers: dict[str, EnqueueBatcher] = {}
        # Set by the Client when the server is the project's shared one: starts it again if
        # it stopped under us (killed, crashed), True if a retry is worth it.
        self.revive: Callable[[], Awaitable[bool]] | None = None

    async def revived(self, error: BaseException) -> bool:
        """``error`` lost the connection and the server was started again: retry the call
        once (every call of ours is safe to repeat, see ``connection.py``)."""
        return self.revive is not None and isinstance(error, ConnectionLost) and await self.revive()

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, queue)
        return k

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        """One transition script on ``queue``; its reply (errors as Corral exceptions)."""
        k = self.keys(queue)
        return await self._run_on(name, [k.meta], [k.base, *args])

    async def _run_on(self, name: str, keys: list[str], args: list[Any]) -> Any:
        """One script on ``keys`` (a queue's, or the registry of workers)."""
        try:
            return await self.runner.run(name, keys, args)
        except (RedisError, OSError) as exc:
            error = corral_error(exc, self.where)
            if not await self.revived(error):
                raise error from exc
        try:
            return await self.runner.run(name, keys, args)
        except (RedisError, OSError) as exc:
            raise corral_error(exc, self.where) from exc

    async def _run_many(self, calls: list[tuple[str, str, list[Any]]]) -> list[Any]:
        """Several scripts ``(name, queue, args)`` in one round trip."""
        wire = []
        for name, queue, args in calls:
            k = self.keys(queue)
            wire.append((name, [k.meta], [k.base, *args]))
        try:
            return await self.runner.run_pipeline(wire)
        except (RedisError, OSError) as exc:
            error = corral_error(exc, self.where)
            if not await self.revived(error):
                raise error from exc
        try:
            return await self.runner.run_pipeline(wire)
        except (RedisError, OSError) as exc:
            raise corral_error(exc, self.where) from exc

    async def _declare(self, queue: str) -> None:
        """Add the queue to the registry (once per engine): what makes a queue exist."""
        if queue not in self._registered:
            await self.client.sadd(self.registry, queue)
            self._registered.add(queue)

    @redis_errors
    async def ping(self) -> None:
        await self.client.ping()

    @redis_errors
    async def close(self) -> None:
        await self.transport.close()
        await self.client.aclose()
