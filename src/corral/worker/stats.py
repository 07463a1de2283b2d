"""Counters a worker keeps about what it did (read by the demo, the CLI and tests)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass(slots=True)
class WorkerStats:
    started: int = 0
    completed: int = 0
    failed_attempts: int = 0
    retried: int = 0
    rescheduled: int = 0
    deferred: int = 0  # unknown job names handed back for another worker
    hook_errors: int = 0  # lifecycle hooks that raised or timed out (outcomes unaffected)
    dead: int = 0
    released: int = 0
    cancelled: int = 0
    stale: int = 0
    dead_reasons: Counter[str] = field(default_factory=Counter)
    by_job: Counter[str] = field(default_factory=Counter)
