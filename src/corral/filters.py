"""The filters operators search jobs with (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from corral.errors import ConfigError
from corral.models import JobSummary


@dataclass(frozen=True, slots=True)
class JobFilter:
    """What to match; every given field must match. ``since``/``until`` bound the time the job
    finished (ended jobs) or was created (others).

    ``error_type`` matches the last error's class or any class it derives from
    (``TimeoutError`` finds Corral's ``JobTimeout`` and ``httpx.ReadTimeout`` alike), by its
    recorded name (``httpx.ReadTimeout``) or the name alone (``ReadTimeout``).
    ``error_message`` is a case-insensitive substring of the last error's message."""

    name: str | None = None
    group: str | None = None
    id_prefix: str | None = None
    error_type: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    error_message: str | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            if value is not None and value.tzinfo is None:
                raise ConfigError(f"{name} must be timezone-aware")
        if self.since and self.until and self.since > self.until:
            raise ConfigError("since must be before until")

    @property
    def empty(self) -> bool:
        return all(getattr(self, f) is None for f in self.__slots__)

    def matches(self, job: JobSummary) -> bool:
        if self.name is not None and job.name != self.name:
            return False
        if self.group is not None and job.group != self.group:
            return False
        if self.id_prefix is not None and not job.id.startswith(self.id_prefix):
            return False
        if self.error_type is not None and not any(
            t == self.error_type or t.rsplit(".", 1)[-1] == self.error_type for t in job.error_types
        ):
            return False
        if self.error_message is not None and (
            self.error_message.casefold() not in (job.error_message or "").casefold()
        ):
            return False
        when = job.finished_at or job.created_at
        if self.since is not None and (when is None or when < self.since):
            return False
        return not (self.until is not None and (when is None or when > self.until))
