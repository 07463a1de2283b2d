"""What a finished attempt means: error records and the retry-or-dead decision (pure)."""

from __future__ import annotations

import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from corral.codec import to_json
from corral.errors import Fatal, JobTimeout
from corral.job import DeadReason
from corral.retry import Backoff, RetryPolicy, backoff_from_spec


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


def error_types(exc: BaseException) -> list[str]:
    """The class chain of ``exc``, most specific first, without the roots every exception
    shares: ``JobTimeout`` gives ``["JobTimeout", "JobControl", "CorralError",
    "TimeoutError", "OSError"]``, so a filter on ``TimeoutError`` finds it. Never empty."""
    cls = type(exc)
    return [type_name(c) for c in cls.__mro__ if c is cls or c not in _SHARED_ROOTS]


def format_tb(exc: BaseException, limit: int = 16000) -> str:
    try:
        text = "".join(traceback.format_exception(exc))
    except Exception:
        text = f"<traceback unavailable for {type(exc).__name__}>"
    return text[-limit:]


def error_json(
    *,
    type_name: str,
    message: str,
    tb: str,
    attempt: int,
    worker: str,
    mro: Sequence[str] = (),
) -> str:
    """One error record. ``mro``, the class chain (:func:`error_types`), is what filters on
    an error type match subclasses with; records without it (written by older versions, or
    for errors that are no exception: ``UnknownJob``, ``Cancelled``) match on ``type``."""
    record: dict[str, Any] = {
        "type": type_name,
        "message": message,
        "traceback": tb,
        "attempt": attempt,
        "at": int(time.time() * 1000),
        "worker": worker,
    }
    if mro:
        record["mro"] = list(mro)
    return to_json(record)


def exception_json(exc: BaseException, attempt: int, worker: str) -> str:
    return error_json(
        type_name=error_type(exc),
        message=safe_text(exc),
        tb=format_tb(exc),
        attempt=attempt,
        worker=worker,
        mro=error_types(exc),
    )


@dataclass(frozen=True, slots=True)
class Decision:
    """``retry_ms`` is None when the job goes to the dead set with ``reason``."""

    retry_ms: int | None
    reason: str


def decide(
    exc: BaseException,
    attempt: int,
    max_attempts: int,
    options: dict[str, Any],
    definition_backoff: Backoff | None,
) -> Decision:
    """Retry with backoff, or dead: Fatal never retries; attempts are bounded by max_attempts."""
    if isinstance(exc, Fatal):
        return Decision(None, DeadReason.FATAL)
    if attempt >= max_attempts:
        return Decision(None, DeadReason.EXHAUSTED)
    spec = options.get("b")
    backoff = backoff_from_spec(spec) if isinstance(spec, dict) else None
    if backoff is None:
        backoff = definition_backoff or RetryPolicy().backoff
    wait = backoff.delay(attempt, exc)
    return Decision(int(wait.total_seconds() * 1000), "")


def timeout_error(seconds: float) -> JobTimeout:
    return JobTimeout(f"attempt exceeded its timeout of {seconds:g}s")
