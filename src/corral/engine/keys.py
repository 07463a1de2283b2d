"""Every Redis key name in one place.

A queue's keys share the prefix ``<prefix>:{<queue>}:``; the braces are a Redis Cluster hash tag,
so one queue lives in one slot and every Lua script touches a single slot. The only key outside
a queue is the registry of queue names, ``<prefix>:queues``.
"""

from __future__ import annotations

import re

from corral.errors import ConfigError

QUEUE_NAME_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,100}$")


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
    def gactive(self) -> str:
        return self.base + "gactive"

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


def registry_key(prefix: str) -> str:
    return f"{prefix}:queues"
