"""Job summaries and the filters operators search with (pure data, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corral.codec import from_json
from corral.errors import ConfigError
from corral.job import Priority
from corral.schedule import from_epoch_ms


def int_field(value: Any, default: int = 0) -> int:
    """A number field of a job hash; a missing or garbled value (malformed job) reads as
    ``default`` so such jobs can still be inspected."""
    try:
        return int(value) if value not in (None, "") else default
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True, slots=True)
class JobSummary:
    """The fields a listing shows; ``Queue.get`` gives everything else."""

    id: str
    name: str
    state: str
    group: str | None
    priority: int
    attempt: int
    max_attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    error_type: str | None
    error_message: str | None
    dead_reason: str | None
    worker: str | None
    reschedules: int
    error_types: tuple[str, ...] = ()  # the last error's class chain, most specific first

    @classmethod
    def from_fields(cls, raw: dict[str, str]) -> JobSummary:
        err = from_json(raw.get("le"), {})
        if not isinstance(err, dict):
            err = {}
        kind = err.get("type")
        chain = err.get("mro")
        if isinstance(chain, list) and chain:
            types = tuple(str(t) for t in chain)
        else:  # written before records carried the chain, or not an exception (UnknownJob)
            types = (str(kind),) if kind else ()
        return cls(
            id=raw["id"],
            name=raw.get("n", ""),
            state=raw.get("st", "?"),
            group=raw.get("g") or None,
            priority=int_field(raw.get("p"), Priority.NORMAL),  # the default is not stored
            attempt=int_field(raw.get("a")),
            max_attempts=int_field(raw.get("ma"), 1),
            created_at=from_epoch_ms(raw.get("ct")),
            started_at=from_epoch_ms(raw.get("sa")),
            finished_at=from_epoch_ms(raw.get("fa")),
            error_type=kind,
            error_message=err.get("message"),
            dead_reason=raw.get("dr"),
            worker=raw.get("wk"),
            reschedules=int_field(raw.get("rs")),
            error_types=types,
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, tuple):
                value = list(value)
            out[name] = value
        return out


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
