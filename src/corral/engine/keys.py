"""Every Redis key name in one place.

A queue's keys share the prefix ``<prefix>:{<queue>}:``; the braces are a Redis Cluster hash tag,
so one queue lives in one slot and every Lua script touches a single slot. The keys outside a
queue are the registry of queue names, ``<prefix>:queues``, and the registry of live workers,
``<prefix>:workers`` and ``<prefix>:workers:alive`` (:class:`WorkerKeys`). The scripts build a
queue's names from ``base`` (ARGV[1]); a test checks that every suffix they use is one listed
here.
"""

from __future__ import annotations

import re

from corral.errors import ConfigError

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")

FIXED_SUFFIXES = (
    "meta",  # hash: counters, pause flag, limits, retention, settings
    "ready",  # sorted set: groups that may be served now, by virtual time
    "limited",  # sorted set: groups held back until a time
    "groups",  # set: groups with waiting or running jobs (or settings)
    "gpaused",  # set: paused groups
    "glimit",  # hash: per-group concurrency overrides
    "grate",  # hash: per-group rate overrides ("n:window_ms")
    "gweight",  # hash: per-group weights
    "gactive",  # hash: running jobs per group
    "rlq",  # sorted set: the queue-wide rate limit's log of starts
    "delayed",  # sorted set: delayed and backing-off jobs, by due time
    "active",  # sorted set: leased jobs, by lease deadline
    "completed",  # sorted set: completed jobs, by the time they may be trimmed
    "dead",  # sorted set: dead and cancelled jobs, likewise
    "marker",  # sorted set: the wake-up signal for blocked workers
    "events",  # stream: every transition (opt-in per queue)
    "cancel",  # pub/sub channel: ids of running jobs whose cancellation was asked
)
PER_ITEM_SUFFIXES = (
    "j:",  # hash: a job
    "d:",  # string: a job's payload
    "log:",  # list: a job's log lines
    "done:",  # list: wake-ups for callers waiting on a job's result
    "w:",  # sorted set: one group's waiting jobs, by priority then FIFO
    "rl:",  # sorted set: one group's rate-limit log of starts
)


def check_queue_name(name: str) -> str:
    if not isinstance(name, str) or not QUEUE_NAME_RE.match(name):
        raise ConfigError(
            f"queue name must be 1-100 letters, digits, '_', '-' or '.', got {name!r}"
        )
    return name


class QueueKeys:
    """Key names of one queue; ``base`` is what the Lua scripts receive as ARGV[1]."""

    __slots__ = ("base", "meta", "queue")

    def __init__(self, prefix: str, queue: str) -> None:
        self.queue = check_queue_name(queue)
        self.base = f"{prefix}:{{{queue}}}:"
        self.meta = self.base + "meta"  # every script call names it: made once

    @property
    def ready(self) -> str:
        return self.base + "ready"

    @property
    def limited(self) -> str:
        return self.base + "limited"

    @property
    def groups(self) -> str:
        return self.base + "groups"

    @property
    def gpaused(self) -> str:
        return self.base + "gpaused"

    @property
    def glimit(self) -> str:
        return self.base + "glimit"

    @property
    def grate(self) -> str:
        return self.base + "grate"

    @property
    def gweight(self) -> str:
        return self.base + "gweight"

    @property
    def gactive(self) -> str:
        return self.base + "gactive"

    @property
    def delayed(self) -> str:
        return self.base + "delayed"

    @property
    def active(self) -> str:
        return self.base + "active"

    @property
    def completed(self) -> str:
        return self.base + "completed"

    @property
    def dead(self) -> str:
        return self.base + "dead"

    @property
    def marker(self) -> str:
        return self.base + "marker"

    @property
    def events(self) -> str:
        return self.base + "events"

    @property
    def cancel(self) -> str:
        return self.base + "cancel"

    def state_set(self, state: str) -> str:
        """The sorted set of jobs in a listable state other than waiting."""
        if state not in ("delayed", "active", "completed", "dead"):
            raise ValueError(f"no sorted set for state {state!r}")
        return self.base + state

    def job(self, job_id: str) -> str:
        return self.base + "j:" + job_id

    def payload(self, job_id: str) -> str:
        return self.base + "d:" + job_id

    def log(self, job_id: str) -> str:
        return self.base + "log:" + job_id

    def done(self, job_id: str) -> str:
        return self.base + "done:" + job_id

    def waiting(self, group: str) -> str:
        return self.base + "w:" + group

    def rate_log(self, group: str) -> str:
        return self.base + "rl:" + group

    def scan_pattern(self) -> str:
        """A SCAN MATCH pattern for every key of the queue (glob characters escaped)."""
        escaped = self.base.replace("[", "\\[").replace("?", "\\?").replace("*", "\\*")
        return escaped + "*"


def registry_key(prefix: str) -> str:
    return f"{prefix}:queues"


class WorkerKeys:
    """The registry of live workers (``workers.lua``): ``info``, a hash of worker id -> the
    JSON the worker wrote; ``alive``, a sorted set of worker id -> the time (ms, the server's
    clock) until which it counts as alive."""

    __slots__ = ("alive", "info")

    def __init__(self, prefix: str) -> None:
        self.info = f"{prefix}:workers"
        self.alive = f"{prefix}:workers:alive"
