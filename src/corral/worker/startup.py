"""What a worker checks, and says, when it starts: a server that may evict jobs, and queues it
was told to serve for which its App defines no job."""

from __future__ import annotations

import logging
from collections.abc import Iterable

from corral.engine.ports import WorkerEngine

log = logging.getLogger(__name__)


async def check_eviction(engine: WorkerEngine) -> None:
    policy = await engine.eviction_policy()
    if policy not in (None, "noeviction"):
        log.warning(
            "Redis at %s has maxmemory-policy %s: when its memory is full it deletes keys, "
            "jobs among them, without a word; set maxmemory-policy noeviction",
            engine.where,
            policy,
        )


def warn_unserved(served: Iterable[str], defined: Iterable[str]) -> None:
    known = set(defined)
    for queue in served:
        if queue not in known:
            log.warning(
                "queue %r: this App defines no job for it; its jobs will wait for a worker "
                "whose App does (a typo in --queue?)",
                queue,
            )
