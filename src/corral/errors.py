"""Every exception Corral raises, in one tree.

::

    CorralError
    ├── ConfigError            bad settings, URL, or job definition (raised at start-up)
    ├── PayloadError           enqueue arguments that fail validation or exceed the size limit
    │   └── StalePayload       a stored payload that no longer fits the job's model (at run time)
    ├── ConnectionLost         Redis could not be reached after the configured retries
    ├── ServerError            Redis refused a command (out of memory, read-only replica, ...)
    ├── EmbeddedServerError    the embedded server could not be found or started
    ├── QueueNotFound          no queue by that name (a queue exists once a job was enqueued)
    ├── QueueFull              enqueue refused: the queue's waiting + delayed jobs are at its cap
    ├── JobNotFound            no job with that id (never existed, or trimmed by retention)
    ├── JobFailed              ``handle.result()`` on a job that ended in the dead-letter set
    ├── ResultTimeout          ``handle.result(timeout=...)`` ran out of time
    ├── LeaseLost              a worker's token no longer matches: the job was re-leased
    └── JobControl             raised *by handlers* to steer their own job
        ├── Fatal              do not retry; send the job to the dead-letter set now
        ├── Retry(delay=)      run again later without counting a failed attempt
        │   └── RateLimited    ... and hold back the job's whole group for the delay
        └── JobTimeout         the attempt ran past its timeout (raised by the worker)
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any


class CorralError(Exception):
    """Base of every Corral exception."""


class ConfigError(CorralError):
    """Invalid configuration: settings, URLs, or a job definition."""


class PayloadError(CorralError, ValueError):
    """Enqueue arguments that do not validate, or a payload over the size limit.

    ``errors`` holds pydantic-style error dicts; ``fields`` the dotted paths that failed.
    """

    def __init__(self, message: str, *, errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.errors: list[dict[str, Any]] = errors or []

    @property
    def fields(self) -> list[str]:
        return [".".join(str(p) for p in e.get("loc", ())) for e in self.errors]


class StalePayload(PayloadError):
    """A stored payload no longer validates against its job's model (the model changed since
    the job was enqueued): the job is dead with reason ``invalid_payload``, not retried."""


class ConnectionLost(CorralError, ConnectionError):
    """Redis stayed unreachable after the configured retries."""


class ServerError(CorralError):
    """Redis refused a command: out of memory (maxmemory), a read-only replica after a
    failover, a busy script, ... The message is the server's."""


class EmbeddedServerError(CorralError):
    """The embedded Redis/Valkey server could not be found or did not start."""


class QueueNotFound(CorralError, LookupError):
    """No queue by this name: a queue exists once a job was enqueued to it (or it was created
    or configured); operations on other names are refused rather than creating a phantom."""

    def __init__(self, name: str, known: list[str]) -> None:
        listed = ", ".join(known) if known else "none yet"
        super().__init__(f"no queue named {name!r} (known: {listed})")
        self.name = name
        self.known = known


class QueueFull(CorralError):
    """An enqueue was refused, all of it: the queue's waiting and delayed jobs would exceed
    its cap (``Queue.set_max_jobs``). ``count`` is how many there were, ``refused`` how many
    new jobs the call would have added."""

    def __init__(self, queue: str, max_jobs: int, count: int, refused: int) -> None:
        super().__init__(
            f"queue {queue!r} is full: {count} jobs waiting or delayed, its cap is {max_jobs} "
            f"({refused} new job(s) refused)"
        )
        self.queue = queue
        self.max_jobs = max_jobs
        self.count = count
        self.refused = refused


class JobNotFound(CorralError, LookupError):
    """No job with this id exists (it never did, or retention trimmed it)."""


class JobFailed(CorralError):
    """The job ended in the dead-letter set; carries the last error."""

    def __init__(
        self, job_id: str, reason: str, error_type: str | None, message: str | None
    ) -> None:
        text = f"job {job_id} is dead ({reason})"
        if error_type:
            text += f": {error_type}: {message or ''}".rstrip(": ")
        super().__init__(text)
        self.job_id = job_id
        self.reason = reason
        self.error_type = error_type
        self.error_message = message


class ResultTimeout(CorralError, TimeoutError):
    """Waiting for a job's result took longer than the timeout given."""


class LeaseLost(CorralError):
    """The worker's fencing token is stale: another worker owns the job now."""


class JobControl(CorralError):
    """Base of the exceptions a handler raises to steer its own job."""


class Fatal(JobControl):
    """Non-retryable failure: the job goes to the dead-letter set immediately."""


class Retry(JobControl):
    """Run the job again after ``delay`` without counting a failed attempt.

    For upstream back-pressure such as HTTP 429 with ``Retry-After``. Bounded by the job's
    ``max_reschedules``; past that the job is dead with reason ``rescheduled_too_often``.
    """

    def __init__(self, delay: timedelta | float = 0.0, message: str = "") -> None:
        seconds = delay.total_seconds() if isinstance(delay, timedelta) else float(delay)
        if seconds < 0:
            raise ValueError("Retry delay must not be negative")
        super().__init__(message or f"retry in {seconds:g}s")
        self.delay = timedelta(seconds=seconds)


class RateLimited(Retry):
    """Upstream said "slow down" for this tenant: reschedule without counting a failure and
    hold back every job of the same group for ``delay`` (other groups keep running)."""


class JobTimeout(JobControl, TimeoutError):
    """The attempt exceeded the job's timeout; it counts as a failed attempt."""
