"""A TCP proxy owned by a test, between worker processes and Redis, that injects faults.

- ``drop()``: reset every open connection (RST), as a restarted load balancer or a NAT that
  forgot its table would;
- ``refuse(seconds)``: reset new connections at once for a while;
- ``stall()`` / ``resume()``: stop forwarding bytes in both directions without closing anything
  (a partition that heals); bytes are held, not lost.
- ``blackhole()``: stop forwarding on the connections open now, forever, while new
  connections work (a half-open connection whose peer vanished without a RST).
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct


class _Pair:
    def __init__(self, client: asyncio.StreamWriter, upstream: asyncio.StreamWriter) -> None:
        self.client = client
        self.upstream = upstream
        self.tasks: list[asyncio.Task[None]] = []
        self.frozen = asyncio.Event()  # set: this pair never forwards again
        self.swallowed = 0

    def reset(self) -> None:
        for writer in (self.client, self.upstream):
            sock = writer.get_extra_info("socket")
            if sock is not None:  # linger 0: close with a RST, not a FIN
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.transport.abort()
        for task in self.tasks:
            task.cancel()


class FaultyProxy:
    def __init__(self, upstream_port: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream_port)
        self.port = 0
        self.connections = 0
        self.swallowed = 0  # requests or replies lost in a black hole
        self._pairs: set[_Pair] = set()
        self._flowing = asyncio.Event()
        self._flowing.set()
        self._refuse_until = 0.0
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> FaultyProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    # -- faults --------------------------------------------------------------------------------

    def drop(self) -> int:
        pairs, self._pairs = self._pairs, set()
        for pair in pairs:
            pair.reset()
        return len(pairs)

    def refuse(self, seconds: float) -> None:
        self._refuse_until = asyncio.get_running_loop().time() + seconds
        self.drop()

    def stall(self) -> None:
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def blackhole(self) -> int:
        for pair in self._pairs:
            pair.frozen.set()
        return len(self._pairs)

    # -- forwarding ----------------------------------------------------------------------------

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if asyncio.get_running_loop().time() < self._refuse_until:
            _Pair(writer, writer).reset()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            _Pair(writer, writer).reset()
            return
        self.connections += 1
        pair = _Pair(writer, up_writer)
        self._pairs.add(pair)
        pair.tasks = [
            asyncio.create_task(self._pump(pair, reader, up_writer)),
            asyncio.create_task(self._pump(pair, up_reader, writer)),
        ]

    async def _pump(
        self, pair: _Pair, src: asyncio.StreamReader, dst: asyncio.StreamWriter
    ) -> None:
        from_client = dst is pair.upstream
        try:
            while True:
                data = await src.read(65536)
                if not data:
                    break
                await self._flowing.wait()
                if pair.frozen.is_set():  # dropped on the floor
                    if from_client:
                        pair.swallowed += 1
                        self.swallowed += 1
                    continue
                dst.write(data)
                await dst.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self._pairs.discard(pair)
            for writer in (pair.client, pair.upstream):
                writer.transport.abort()

    def hung_requests(self) -> int:
        """Requests swallowed by the black hole on connections their client still holds."""
        return sum(p.swallowed for p in self._pairs if p.frozen.is_set())
