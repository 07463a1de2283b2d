"""The only package that speaks to Redis: key names, the storage schema, Lua scripts and the
Engine, split by concern over one base that owns the script call and the error mapping."""

from corral.engine.consumer import Consumer
from corral.engine.events import Events
from corral.engine.operator import Operator
from corral.engine.producer import Producer
from corral.engine.reader import LISTABLE, Reader
from corral.engine.wire import Claimed, ClaimResult, JobSpec, NewJob


class Engine(Producer, Consumer, Operator, Reader, Events):
    """Async access to the queues of one Redis database and key prefix (one per event loop):
    producer (enqueue), consumer (claim, acknowledge, leases), operator (cancel, replay,
    pause, ...), reader (jobs, listings, counts) and events (the stream as a consumer group)
    methods over one base."""


__all__ = ["LISTABLE", "ClaimResult", "Claimed", "Engine", "JobSpec", "NewJob"]
