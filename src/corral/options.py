"""Per-call job options and the rules for ids, groups and priorities (pure data)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from datetime import datetime, timedelta
from enum import IntEnum
from typing import Any

from corral.errors import ConfigError
from corral.retry import RetryPolicy

JOB_ID_RE = re.compile(r"^[A-Za-z0-9_.:@/\-]{1,128}$")
GROUP_MAX_LEN = 128
PRIORITY_MIN, PRIORITY_MAX = 0, 2000


class Priority(IntEnum):
    """Named priorities; any integer 0..2000 works too. Lower runs sooner."""

    CRITICAL = 0
    HIGH = 100
    NORMAL = 500
    LOW = 1000


def check_group(group: str) -> str:
    if not isinstance(group, str) or not group:
        raise ConfigError(f"group must be a non-empty string, got {group!r}")
    if len(group) > GROUP_MAX_LEN:
        raise ConfigError(f"group must be at most {GROUP_MAX_LEN} characters, got {len(group)}")
    return group


def check_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not JOB_ID_RE.match(job_id):
        raise ConfigError(
            f"job_id must be 1-128 characters of letters, digits and _.:@/-, got {job_id!r}"
        )
    return job_id


@dataclass(frozen=True, slots=True)
class JobOptions:
    """Options for one enqueue. Set defaults in ``@app.job(...)`` and override per call with
    ``job_fn.with_options(...)``; ``None`` means "use the default"."""

    priority: int = Priority.NORMAL
    delay: timedelta | None = None
    run_at: datetime | None = None
    job_id: str | None = None
    timeout: timedelta | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    max_reschedules: int = 25
    max_stalls: int = 1
    keep_completed: timedelta | None = None
    keep_dead: timedelta | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.priority, int) or not PRIORITY_MIN <= self.priority <= PRIORITY_MAX:
            raise ConfigError(
                f"priority must be an integer {PRIORITY_MIN}..{PRIORITY_MAX}, got {self.priority!r}"
            )
        if self.job_id is not None:
            check_job_id(self.job_id)
        if self.timeout is not None and self.timeout <= timedelta(0):
            raise ConfigError(f"timeout must be positive, got {self.timeout}")
        if self.max_reschedules < 0 or self.max_stalls < 0:
            raise ConfigError("max_reschedules and max_stalls must not be negative")
        for name in ("keep_completed", "keep_dead"):
            value = getattr(self, name)
            if value is not None and value < timedelta(0):
                raise ConfigError(f"{name} must not be negative, got {value}")
        if self.delay is not None and self.run_at is not None:
            raise ConfigError("give either delay or run_at, not both")

    def merged(self, **changes: Any) -> JobOptions:
        """A copy with ``changes`` applied; unknown names are refused by name."""
        known = {f.name for f in fields(self)}
        unknown = set(changes) - known
        if unknown:
            raise ConfigError(f"unknown job option(s): {', '.join(sorted(unknown))}")
        if "delay" in changes and changes["delay"] is not None:
            changes.setdefault("run_at", None)
        if "run_at" in changes and changes["run_at"] is not None:
            changes.setdefault("delay", None)
        return replace(self, **changes)
