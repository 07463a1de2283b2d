"""What a finished attempt means: error records and the retry-or-dead decision (pure)."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from corral.errors import Fatal, JobTimeout
from corral.models import DeadReason, ErrorRecord
from corral.retry import Backoff, RetryPolicy


def safe_text(value: Any, limit: int = 4000) -> str:
    """``str()`` that never raises (handlers may raise exceptions that cannot be printed)."""
    try:
        text = str(value)
    except Exception:
        try:
            text = repr(value)
        except Exception:
            text = f"<unprintable {type(value).__name__}>"
    return text if len(text) <= limit else text[:limit] + "..."


# Every exception class has these ancestors; listing them would match every error.
_SHARED_ROOTS = (object, BaseException, Exception)


def type_name(cls: type) -> str:
    """How an error record names a class: builtins and Corral's own unqualified
    (``TimeoutError``, ``JobTimeout``), others ``module.Qualname`` (``httpx.ConnectError``)."""
    module = cls.__module__
    if module == "builtins" or module == "corral" or module.startswith("corral."):
        return cls.__qualname__
    return f"{module}.{cls.__qualname__}"


def error_type(exc: BaseException) -> str:
    return type_name(type(exc))


def error_types(exc: BaseException) -> tuple[str, ...]:
    """The class chain of ``exc``, most specific first, without the roots every exception
    shares: ``JobTimeout`` gives ``("JobTimeout", "JobControl", "CorralError",
    "TimeoutError", "OSError")``, so a filter on ``TimeoutError`` finds it. Never empty."""
    cls = type(exc)
    return tuple(type_name(c) for c in cls.__mro__ if c is cls or c not in _SHARED_ROOTS)


def format_tb(exc: BaseException, limit: int = 16000) -> str:
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:
        text = f"<traceback unavailable for {type(exc).__name__}>"
    return text[-limit:]


def error_record(exc: BaseException, attempt: int, worker: str) -> ErrorRecord:
    """What a failed attempt leaves in the job's history."""
    return ErrorRecord(
        attempt=attempt,
        type=error_type(exc),
        message=safe_text(exc),
        traceback=format_tb(exc),
        at=datetime.now(UTC),
        worker=worker,
        types=error_types(exc),
    )


def plain_error(type_name: str, message: str, attempt: int, worker: str) -> ErrorRecord:
    """An error that is no exception (a cancellation, a job nobody knows)."""
    return ErrorRecord(attempt, type_name, message, "", datetime.now(UTC), worker)


@dataclass(frozen=True, slots=True)
class Decision:
    """``retry_ms`` is None when the job goes to the dead set with ``reason``."""

    retry_ms: int | None
    reason: str


def _names(classes: Sequence[type[BaseException]]) -> set[str]:
    return {type_name(c) for c in classes}


def classify(policy: RetryPolicy, exc: BaseException, chain: Sequence[str] | None) -> str | None:
    """The dead reason ``policy``'s classification gives this error, or None (retried as
    usual). ``chain`` is the class chain of an error raised in a process-mode child, which
    reaches us as text: it is matched by name (``type_name``) instead of ``isinstance``. An
    error with an empty chain (a child that died, or never started) is the worker's failure,
    not the handler's: it is not classified."""
    retry_on, fatal_on = policy.classification
    if not (retry_on or fatal_on):
        return None
    if chain is not None:
        if not chain:
            return None
        if fatal_on and _names(fatal_on).intersection(chain):
            return DeadReason.FATAL
        if retry_on and not _names(retry_on).intersection(chain):
            return DeadReason.NOT_RETRYABLE
        return None
    if fatal_on and isinstance(exc, fatal_on):
        return DeadReason.FATAL
    if retry_on and not isinstance(exc, retry_on):
        return DeadReason.NOT_RETRYABLE
    return None


def decide(
    exc: BaseException,
    attempt: int,
    max_attempts: int,
    backoff: Backoff | None,
    *,
    policy: RetryPolicy | None = None,
    chain: Sequence[str] | None = None,
) -> Decision:
    """Retry with backoff, or dead: Fatal never retries, nor does an error the definition's
    ``policy`` classifies as fatal or not retryable; attempts are bounded by max_attempts.
    ``backoff`` is the job's own if it carries one, else its definition's; ``chain``: see
    :func:`classify`."""
    if isinstance(exc, Fatal):
        return Decision(None, DeadReason.FATAL)
    reason = None if policy is None else classify(policy, exc, chain)
    if reason is not None:
        return Decision(None, reason)
    if attempt >= max_attempts:
        return Decision(None, DeadReason.EXHAUSTED)
    wait = (backoff or RetryPolicy().backoff).delay(attempt, exc)
    return Decision(int(wait.total_seconds() * 1000), "")


def timeout_error(seconds: float) -> JobTimeout:
    return JobTimeout(f"attempt exceeded its timeout of {seconds:g}s")
