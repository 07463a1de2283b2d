"""A lean, pipelined Redis connection for the hot path (scripts), on asyncio + hiredis.

redis-py's asyncio client spends ~170 µs of CPU per round trip on its pool, retry and timeout
machinery; a job costs a few round trips, so that was most of a worker's CPU. This connection
writes RESP itself, parses replies with hiredis, and lets every coroutine of the loop share one
socket: commands from concurrent callers go out back to back and replies are matched in order
(what ioredis calls auto-pipelining). Blocking commands (BZPOPMIN, BLPOP) and the readers keep
using redis-py on their own connections, so nothing here ever waits behind a blocked call.

On a lost connection every pending call fails with redis-py's ConnectionError and is sent again
on a new connection, with back-off, up to ``retries`` times; that is safe for our scripts (job
ids are chosen by the client, and every write after a claim is fenced by the job's token).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any, cast

import hiredis
from redis.exceptions import (
    AuthenticationError,
    BusyLoadingError,
    NoScriptError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError

from corral.engine.connection import CONNECT_TIMEOUT_S, tls_context
from corral.settings import RedisTarget

log = logging.getLogger(__name__)

Command = Sequence[str | int | float | bytes]
# hiredis's stub types the argument as a 1-tuple; it takes any number of arguments
_pack_command: Callable[[tuple[Any, ...]], bytes] = hiredis.pack_command
REPLY_TIMEOUT_S = 10.0


def _plain(arg: Any) -> str | int | float | bytes:
    """An argument hiredis's encoder refuses (an IntEnum, a str subclass, ...) as a plain one."""
    if isinstance(arg, bytes | str):
        return bytes(arg) if isinstance(arg, bytes) else str(arg)
    if isinstance(arg, bool) or arg is None:
        raise TypeError(f"cannot send {arg!r} to Redis")  # a bug upstream, not a value
    if isinstance(arg, int):
        return int(arg)
    if isinstance(arg, float):
        return float(arg)
    return str(arg)


def _pack_one(command: Command) -> bytes:
    try:
        return _pack_command(tuple(command))
    except TypeError:
        return _pack_command(tuple(_plain(a) for a in command))


def pack(commands: Sequence[Command]) -> bytes:
    """RESP-encode commands into one buffer (hiredis's C encoder: a third of the cost of
    doing it in Python, which mattered for a bulk enqueue's thousands of arguments)."""
    if len(commands) == 1:
        return _pack_one(commands[0])
    return b"".join([_pack_one(c) for c in commands])


def _error(reply: hiredis.ReplyError) -> ResponseError | BusyLoadingError:
    text = str(reply)
    if text.startswith("LOADING"):  # a restarted server replaying its AOF: retry, as redis-py
        return BusyLoadingError(text)  # does (a ConnectionError: the command did not run)
    return NoScriptError(text) if text.startswith("NOSCRIPT") else ResponseError(text)


class _Connection(asyncio.Protocol):
    """One socket: writes commands, resolves futures with replies in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.pending: collections.deque[tuple[asyncio.Future[Any], float]] = collections.deque()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.loop = asyncio.get_running_loop()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, but they behave as one
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while True:
            reply = self.reader.gets()
            if reply is False:
                return
            if not self.pending:  # a reply nobody asked for: the stream is out of step
                self.abort(RedisConnectionError("unexpected reply from Redis"))
                return
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_result(_error(reply) if isinstance(reply, hiredis.ReplyError) else reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        error = RedisConnectionError(f"connection to Redis lost: {exc or 'closed by server'}")
        while self.pending:
            future, _ = self.pending.popleft()
            if not future.done():
                future.set_exception(error)

    # Both encode before they register a reply's future: a command that fails to encode is
    # never sent, and a future waiting for it would take the next command's reply.

    def send(self, commands: Sequence[Command]) -> list[asyncio.Future[Any]]:
        data = pack(commands)
        transport = self._open_transport()
        now = self.loop.time()
        futures = [self.loop.create_future() for _ in commands]
        self.pending.extend((f, now) for f in futures)
        transport.write(data)
        return futures

    def send_one(self, command: Command) -> asyncio.Future[Any]:
        """``send`` for a single command: no lists (the path of every awaited enqueue)."""
        data = _pack_one(command)
        transport = self._open_transport()
        future = self.loop.create_future()
        self.pending.append((future, self.loop.time()))
        transport.write(data)
        return future

    def _open_transport(self) -> asyncio.Transport:
        if self.closed or self.transport is None or self.transport.is_closing():
            raise RedisConnectionError("connection to Redis is closed")
        return self.transport

    def oldest_wait(self) -> float:
        return self.loop.time() - self.pending[0][1] if self.pending else 0.0

    def abort(self, exc: Exception) -> None:
        if self.transport is not None:
            self.transport.abort()
        self.connection_lost(exc)


class Transport:
    """Pipelined commands over one shared connection, reconnecting as needed."""

    def __init__(self, target: RedisTarget, *, name: str = "corral", retries: int = 5) -> None:
        self.target = target
        self.name = name
        self.retries = retries
        self._conn: _Connection | None = None
        self._lock = asyncio.Lock()
        self._watchdog: asyncio.Task[None] | None = None
        self._tls: ssl.SSLContext | None = None  # made at the first connection

    async def execute(self, *command: str | int | float | bytes) -> Any:
        """One command; an error reply is raised."""
        reply = await self.call(command)
        if isinstance(reply, Exception):
            raise reply
        return reply

    async def call(self, command: Command) -> Any:
        """One command; an error reply comes back as an exception value (``pipeline`` for a
        single command, without its lists: the path of every awaited enqueue)."""
        attempt = 0
        while True:
            try:
                conn = self._conn
                if conn is None or conn.closed:
                    conn = await self._connection()
                return await conn.send_one(command)
            except (RedisConnectionError, OSError, TimeoutError) as exc:
                attempt = await self._back_off(attempt, exc)

    async def pipeline(self, commands: Sequence[Command]) -> list[Any]:
        """Send commands together; error replies come back as exception values, in place."""
        attempt = 0
        while True:
            try:
                conn = await self._connection()
                futures = conn.send(commands)
                return [await f for f in futures]
            except (RedisConnectionError, OSError, TimeoutError) as exc:
                attempt = await self._back_off(attempt, exc)

    async def _back_off(self, attempt: int, exc: Exception) -> int:
        """Wait before sending again (safe for our scripts: job ids are chosen by the client
        and every write after a claim is fenced), or give up after ``retries``. Refused
        credentials are not retried: they will not change."""
        if isinstance(exc, AuthenticationError):
            raise exc
        attempt += 1
        if attempt > self.retries:
            raise RedisConnectionError(f"Redis unreachable: {exc}") from exc
        pause = min(2.0, 0.05 * 2 ** (attempt - 1))
        log.debug("redis transport: %s; retry %d in %.2fs", exc, attempt, pause)
        await asyncio.sleep(pause)
        return attempt

    async def _connection(self) -> _Connection:
        conn = self._conn
        if conn is not None and not conn.closed:
            return conn
        async with self._lock:
            if self._conn is None or self._conn.closed:
                self._conn = await asyncio.wait_for(self._open(), CONNECT_TIMEOUT_S)
                if self._watchdog is None or self._watchdog.done():
                    self._watchdog = asyncio.get_running_loop().create_task(self._watch())
            return self._conn

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        t = self.target
        if t.scheme == "unix":
            _, conn = await loop.create_unix_connection(_Connection, t.path)
        else:
            if t.tls is not None and self._tls is None:
                self._tls = tls_context(t.tls)
            tls = self._tls if t.tls is not None else None
            host, port = t.host or "localhost", t.port or 6379
            _, conn = await loop.create_connection(
                _Connection, host, port, ssl=tls, server_hostname=host if tls else None
            )
        hello: list[Command] = []
        if t.password is not None:
            hello.append(("AUTH", t.username, t.password) if t.username else ("AUTH", t.password))
        if t.db:
            hello.append(("SELECT", t.db))
        hello.append(("CLIENT", "SETNAME", self.name))
        for reply in [await f for f in conn.send(hello)]:
            if isinstance(reply, Exception):
                conn.abort(RedisConnectionError(str(reply)))
                if "AUTH" in str(reply) or "WRONGPASS" in str(reply) or "NOAUTH" in str(reply):
                    raise AuthenticationError(str(reply))
                raise reply
        return conn

    async def _watch(self) -> None:
        """Drop a connection whose replies stopped coming (a half-open socket)."""
        while True:
            await asyncio.sleep(1.0)
            conn = self._conn
            if conn is not None and not conn.closed and conn.oldest_wait() > REPLY_TIMEOUT_S:
                log.warning("no reply from Redis in %.0fs; reconnecting", REPLY_TIMEOUT_S)
                conn.abort(RedisConnectionError("reply timeout"))

    async def close(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        if self._conn is not None and self._conn.transport is not None:
            self._conn.transport.close()
        self._conn = None
