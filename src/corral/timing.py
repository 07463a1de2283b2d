"""When a job becomes due: pure conversions from ``delay`` / ``run_at`` to milliseconds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from corral.errors import ConfigError


def to_ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def due_in_ms(delay: timedelta | None, run_at: datetime | None, now: datetime | None = None) -> int:
    """Milliseconds from now until the job is due (0 = now). ``delay`` and ``run_at`` exclude
    each other; a naive ``run_at`` is refused because its zone would be a guess."""
    if delay is not None and run_at is not None:
        raise ConfigError("give either delay or run_at, not both")
    if delay is not None:
        if delay < timedelta(0):
            raise ConfigError(f"delay must not be negative, got {delay}")
        return to_ms(delay)
    if run_at is not None:
        if run_at.tzinfo is None:
            raise ConfigError("run_at must be timezone-aware (e.g. datetime.now(UTC) + ...)")
        current = now or datetime.now(UTC)
        return max(0, to_ms(run_at - current))
    return 0


def from_epoch_ms(value: int | float | str | None) -> datetime | None:
    if value in (None, "", b""):
        return None
    try:
        return datetime.fromtimestamp(float(value) / 1000.0, tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return None  # a garbled field of a malformed job: unknown rather than a crash
