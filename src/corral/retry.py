"""Retry policies and backoff curves: pure functions of the attempt number.

A job whose policy differs from its definition's carries it (the engine stores it, see
``engine/schema.py``), so the worker that runs a retry computes the delay the caller asked for.
Custom backoffs are callables and live only in the job's definition, and so does the
classification of errors (``retry_on``, ``fatal_on``): exception classes live in code.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta

from corral.errors import ConfigError

_MAX_ATTEMPTS = 10_000


def _ms(value: timedelta) -> int:
    return int(value.total_seconds() * 1000)


def _check_jitter(jitter: float) -> None:
    if not 0.0 <= jitter <= 1.0:
        raise ConfigError(f"jitter must be between 0 and 1, got {jitter}")


def _check_delay(name: str, value: timedelta) -> None:
    if value < timedelta(0):
        raise ConfigError(f"{name} must not be negative, got {value}")


def apply_jitter(ms: float, jitter: float, rng: random.Random | None = None) -> int:
    """Spread ``ms`` uniformly over ``ms * (1 ± jitter)`` so retries of a burst do not align."""
    if jitter <= 0 or ms <= 0:
        return round(ms)
    r = (rng or random).uniform(-jitter, jitter)
    return max(0, round(ms * (1.0 + r)))


class Backoff:
    """Base class: ``delay(attempt)`` is the wait before attempt ``attempt + 1``."""

    jitter: float = 0.0

    def base_ms(self, attempt: int) -> float:
        raise NotImplementedError

    def delay(
        self, attempt: int, error: BaseException | None = None, rng: random.Random | None = None
    ) -> timedelta:
        return timedelta(milliseconds=apply_jitter(self.base_ms(attempt), self.jitter, rng))


@dataclass(frozen=True, slots=True)
class Fixed(Backoff):
    """The same wait after every failed attempt."""

    wait: timedelta = timedelta(seconds=1)
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_delay("Fixed.wait", self.wait)
        _check_jitter(self.jitter)

    def base_ms(self, attempt: int) -> float:
        return float(_ms(self.wait))


@dataclass(frozen=True, slots=True)
class Linear(Backoff):
    """``step * attempt``, capped at ``cap``."""

    step: timedelta = timedelta(seconds=1)
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_delay("Linear.step", self.step)
        _check_delay("Linear.cap", self.cap)
        _check_jitter(self.jitter)

    def base_ms(self, attempt: int) -> float:
        return float(min(_ms(self.step) * max(attempt, 1), _ms(self.cap)))


@dataclass(frozen=True, slots=True)
class Exponential(Backoff):
    """``base * factor ** (attempt - 1)``, capped at ``cap``."""

    base: timedelta = timedelta(seconds=1)
    factor: float = 2.0
    cap: timedelta = timedelta(hours=1)
    jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_delay("Exponential.base", self.base)
        _check_delay("Exponential.cap", self.cap)
        _check_jitter(self.jitter)
        if self.factor < 1.0:
            raise ConfigError(f"Exponential.factor must be >= 1, got {self.factor}")

    def base_ms(self, attempt: int) -> float:
        exponent = min(max(attempt, 1) - 1, 64)
        return float(min(_ms(self.base) * self.factor**exponent, _ms(self.cap)))


@dataclass(frozen=True, slots=True)
class Custom(Backoff):
    """Any function ``(attempt, error) -> timedelta``; jitter is applied on top."""

    fn: Callable[[int, BaseException | None], timedelta]
    jitter: float = 0.0

    def __post_init__(self) -> None:
        if not callable(self.fn):
            raise ConfigError("Custom backoff needs a callable")
        _check_jitter(self.jitter)

    def base_ms(self, attempt: int) -> float:
        return float(_ms(self.fn(attempt, None)))

    def delay(
        self, attempt: int, error: BaseException | None = None, rng: random.Random | None = None
    ) -> timedelta:
        wait = self.fn(attempt, error)
        if not isinstance(wait, timedelta) or wait < timedelta(0):
            raise ConfigError(f"custom backoff must return a non-negative timedelta, got {wait!r}")
        return timedelta(milliseconds=apply_jitter(_ms(wait), self.jitter, rng))


ErrorClasses = tuple[type[BaseException], ...]


def error_classes(
    name: str, value: type[BaseException] | Iterable[type[BaseException]]
) -> ErrorClasses:
    """``retry_on`` / ``fatal_on`` as a tuple of exception classes (one class alone is fine)."""
    items = (value,) if isinstance(value, type) else tuple(value)
    for item in items:
        if not (isinstance(item, type) and issubclass(item, BaseException)):
            raise ConfigError(f"{name} takes exception classes, got {item!r}")
    return items


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How many attempts a job gets in all, how long to wait between them, and which errors
    are worth another attempt.

    ``retry_on``: only errors of these classes (or their subclasses) are retried; any other
    error sends the job to the dead-letter set at once (reason ``not_retryable``).
    ``fatal_on``: errors of these classes are never retried (reason ``fatal``, as if the
    handler had raised ``Fatal``); it wins over ``retry_on``. Empty: every error is retried."""

    attempts: int = 3
    backoff: Backoff = field(default_factory=lambda: Exponential(timedelta(seconds=1), jitter=0.1))
    retry_on: ErrorClasses = ()
    fatal_on: ErrorClasses = ()

    def __post_init__(self) -> None:
        if not isinstance(self.attempts, int) or not 1 <= self.attempts <= _MAX_ATTEMPTS:
            raise ConfigError(
                f"attempts must be an integer 1..{_MAX_ATTEMPTS}, got {self.attempts!r}"
            )
        if not isinstance(self.backoff, Backoff):
            raise ConfigError(
                f"backoff must be a Backoff (Fixed, Linear, ...), got {self.backoff!r}"
            )
        retry_on = error_classes("retry_on", self.retry_on)
        fatal_on = error_classes("fatal_on", self.fatal_on)
        both = [c.__qualname__ for c in retry_on if c in fatal_on]
        if both:
            raise ConfigError(f"{', '.join(both)} cannot be in both retry_on and fatal_on")
        object.__setattr__(self, "retry_on", retry_on)  # a class alone becomes a tuple
        object.__setattr__(self, "fatal_on", fatal_on)

    @property
    def classification(self) -> tuple[ErrorClasses, ErrorClasses]:
        """``(retry_on, fatal_on)``; both empty when every error is retried."""
        return self.retry_on, self.fatal_on

    def should_retry(self, attempt: int) -> bool:
        """``attempt`` is the 1-based number of the attempt that just failed."""
        return attempt < self.attempts


NO_RETRY = RetryPolicy(attempts=1, backoff=Fixed(timedelta(0)))
