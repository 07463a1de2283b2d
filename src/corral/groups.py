"""Multi-tenant groups as data: rate limits and per-group limits (pure)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from corral.errors import ConfigError


@dataclass(frozen=True, slots=True)
class RateLimit:
    """At most ``limit`` job starts in any window of length ``per`` (a sliding window)."""

    limit: int
    per: timedelta

    def __post_init__(self) -> None:
        if not isinstance(self.limit, int) or self.limit <= 0:
            raise ConfigError(f"rate limit must be a positive integer, got {self.limit!r}")
        if self.per < timedelta(milliseconds=1):
            raise ConfigError(f"rate window must be at least 1 ms, got {self.per}")

    @property
    def window_ms(self) -> int:
        return int(self.per.total_seconds() * 1000)

    def encode(self) -> str:
        return f"{self.limit}:{self.window_ms}"

    @classmethod
    def decode(cls, raw: str | None) -> RateLimit | None:
        if not raw:
            return None
        n, _, w = raw.partition(":")
        return cls(int(n), timedelta(milliseconds=int(w)))


def check_concurrency(value: int | None, name: str = "concurrency") -> int | None:
    if value is not None and (not isinstance(value, int) or value <= 0):
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")
    return value


def check_weight(value: float | None) -> float | None:
    if value is not None and (not isinstance(value, int | float) or value <= 0 or value > 1000):
        raise ConfigError(f"group weight must be in (0, 1000], got {value!r}")
    return value
