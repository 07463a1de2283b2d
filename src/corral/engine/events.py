"""The events stream of a queue, read as a consumer group: delivered at least once, each entry
acknowledged by whoever applied it, entries a dead consumer held taken over by another, and
how far behind a group is (and whether the stream was trimmed past entries it never read)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from redis.exceptions import ResponseError

from corral.engine.base import EngineBase
from corral.engine.errors import redis_errors
from corral.engine.schema import decode_event
from corral.models import EventLag, QueueEvent


class Events(EngineBase):
    @redis_errors
    async def ensure_event_group(self, queue: str, group: str, *, from_start: bool) -> bool:
        """Create the consumer group (and the stream) if missing: reading from the stream's
        first entry, or only what comes next. True if it was created now."""
        key = self.keys(queue).events
        try:
            await self.client.xgroup_create(
                key, group, id="0" if from_start else "$", mkstream=True
            )
        except ResponseError as exc:
            if "BUSYGROUP" in str(exc):
                return False
            raise
        return True

    @redis_errors
    async def read_events(
        self, queues: Sequence[str], group: str, consumer: str, count: int, block_ms: int | None
    ) -> list[QueueEvent]:
        """New entries for this consumer, oldest first per queue, waiting up to ``block_ms``
        for one (None: do not wait)."""
        streams: dict[Any, Any] = {self.keys(q).events: ">" for q in queues}
        reply = await self.client.xreadgroup(group, consumer, streams, count=count, block=block_ms)
        return self._decode(reply)

    @redis_errors
    async def take_over_events(
        self, queue: str, group: str, consumer: str, min_idle_ms: int, count: int
    ) -> list[QueueEvent]:
        """Entries delivered to a consumer that has not acknowledged them for ``min_idle_ms``
        (it died, or hangs): now this consumer's."""
        key = self.keys(queue).events
        reply = await self.client.xautoclaim(key, group, consumer, min_idle_ms, "0-0", count=count)
        entries = reply[1] if len(reply) > 1 else []
        return [decode_event(queue, str(i), f) for i, f in entries if f]

    @redis_errors
    async def ack_events(self, queue: str, group: str, stream_ids: Sequence[str]) -> int:
        if not stream_ids:
            return 0
        return int(await self.client.xack(self.keys(queue).events, group, *stream_ids))

    @redis_errors
    async def event_lag(self, queue: str, group: str) -> EventLag | None:
        """None when the group does not exist."""
        key = self.keys(queue).events
        groups = await self.client.xinfo_groups(key)
        info = next((g for g in groups if str(g.get("name")) == group), None)
        if info is None:
            return None
        stream = await self.client.xinfo_stream(key)
        lag = info.get("lag")
        read, added = info.get("entries-read"), stream.get("entries-added")
        if read is not None and added is not None:
            # more entries were added than it has read, and more than the stream still holds
            lost = int(added) - int(read) > int(stream.get("length", 0))
        else:  # before Redis 7: what it last read is older than the oldest entry left
            first: Any = stream.get("first-entry")
            last = str(info.get("last-delivered-id", "0-0"))
            lost = bool(first) and _older(last, str(first[0])) and last != "0-0"
        return EventLag(
            queue=queue,
            group=group,
            pending=int(info.get("pending", 0)),
            lag=None if lag is None else int(lag),
            lost=lost,
        )

    def _decode(self, reply: Any) -> list[QueueEvent]:
        queues = {self.keys(q).events: q for q in self._keys}
        events: list[QueueEvent] = []
        for key, entries in reply or []:
            queue = queues.get(str(key), "")
            events += [decode_event(queue, str(i), f) for i, f in entries if f]
        return events


def _older(a: str, b: str) -> bool:
    """Stream ids compared as (ms, seq)."""
    ams, _, aseq = a.partition("-")
    bms, _, bseq = b.partition("-")
    return (int(ams or 0), int(aseq or 0)) < (int(bms or 0), int(bseq or 0))
