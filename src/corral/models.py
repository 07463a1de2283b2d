"""The read models: what the engine hands up about jobs, queues and groups (pure data).

The engine decodes Redis's field codes into these once (``engine/schema.py``); nothing above
the engine sees a hash, a field code or a script's integer reply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from corral.groups import RateLimit
from corral.retry import Backoff


class JobState(StrEnum):
    WAITING = "waiting"
    DELAYED = "delayed"
    ACTIVE = "active"
    COMPLETED = "completed"
    DEAD = "dead"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED)


class DeadReason(StrEnum):
    """Why a job landed in the dead-letter set."""

    EXHAUSTED = "exhausted"
    FATAL = "fatal"  # raised Fatal, or an error its retry policy's fatal_on names
    NOT_RETRYABLE = "not_retryable"  # an error its retry policy's retry_on does not name
    STALLED = "stalled"
    RESCHEDULED_TOO_OFTEN = "rescheduled_too_often"
    UNKNOWN_JOB = "unknown_job"
    INVALID_PAYLOAD = "invalid_payload"
    MALFORMED = "malformed"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class JobOverrides:
    """Options a job carries apart from its definition's, when they differ (most jobs carry
    none: the definition's apply). ``timeout`` None means no timeout; ``backoff`` None means the
    definition's (a ``Custom`` backoff is a function only the definition holds)."""

    timeout: timedelta | None = None
    backoff: Backoff | None = None


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One failed attempt, as kept in the job's history."""

    attempt: int
    type: str
    message: str
    traceback: str
    at: datetime | None
    worker: str | None = None
    types: tuple[str, ...] = ()  # the exception's class chain, most specific first

    @property
    def kinds(self) -> tuple[str, ...]:
        """The names an error-type filter matches: the class chain when it was recorded,
        else the type alone (older records, errors that are no exception)."""
        return self.types or ((self.type,) if self.type else ())


@dataclass(frozen=True, slots=True)
class Cancellation:
    """Who asked for a job to be cancelled, when and why."""

    by: str
    reason: str
    at: datetime | None


@dataclass(frozen=True, slots=True)
class Replay:
    """One replay of a dead job: who sent it back, when, why it had died, with an edit or not."""

    by: str
    at: datetime | None
    reason: str
    edited: bool


@dataclass(frozen=True, slots=True)
class JobInfo:
    """A snapshot of one job as stored in Redis (read model; no I/O)."""

    id: str
    queue: str
    name: str
    state: JobState
    payload: Any
    group: str | None
    priority: int
    attempt: int
    max_attempts: int
    created_at: datetime | None
    started_at: datetime | None
    finished_at: datetime | None
    progress: Any
    result: Any
    errors: list[ErrorRecord]
    dead_reason: str | None
    worker: str | None  # running it; once it ended, the one that ran its last attempt
    reschedules: int
    stalls: int
    overrides: JobOverrides | None = None  # None: the definition's options apply
    cancellation: Cancellation | None = None
    replays: list[Replay] = field(default_factory=list)
    due_at: datetime | None = None  # delayed or backing off: when it becomes claimable
    lease_until: datetime | None = None  # active: when its lease runs out unless renewed

    @property
    def last_error(self) -> ErrorRecord | None:
        return self.errors[-1] if self.errors else None

    def running_for(self, now: datetime | None = None) -> timedelta | None:
        """How long its current attempt has run (active jobs only)."""
        return _elapsed(self.state == JobState.ACTIVE, self.started_at, now)


def _elapsed(running: bool, since: datetime | None, now: datetime | None) -> timedelta | None:
    if not running or since is None:
        return None
    return max(timedelta(0), (now or datetime.now(UTC)) - since)


@dataclass(frozen=True, slots=True)
class JobEvent:
    """What became of one attempt, as the worker that ran it saw it once the outcome was
    recorded: what lifecycle hooks (``@app.on_complete`` ...) and a worker's metrics get.

    ``outcome``: completed, retried (failed, will run again), rescheduled (``Retry``),
    deferred (a job this worker does not know), dead, cancelled or lease_lost (another worker
    owns the job now). ``result`` is the handler's return value as JSON values."""

    queue: str
    job_id: str
    name: str
    group: str | None
    attempt: int
    max_attempts: int
    outcome: str
    worker: str
    started_at: datetime
    duration: timedelta
    error: ErrorRecord | None = None
    dead_reason: str | None = None
    result: Any = None

    @property
    def will_retry(self) -> bool:
        return self.outcome == "retried"


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """One transition of one job, from its queue's events stream (``Queue.set_events``).

    ``kind``: enqueued, started, completed, retrying, rescheduled, rate_limited, deferred,
    released, stalled, dead, cancel_requested, replayed, removed, promoted (and ``cleaned``,
    of no one job). ``stream_id`` is unique per transition and ordered: what a consumer
    acknowledges and what makes applying an event twice harmless. Fields a kind does not know
    are None."""

    stream_id: str
    queue: str
    kind: str
    job_id: str
    at: datetime
    attempt: int | None = None
    name: str | None = None
    group: str | None = None
    priority: int | None = None
    max_attempts: int | None = None
    worker: str | None = None
    delay: timedelta | None = None  # enqueued, retrying, rescheduled, deferred: due after
    duration: timedelta | None = None  # completed: how long the attempt ran
    result: Any = None  # completed: the result, as JSON values
    error: ErrorRecord | None = None  # retrying, dead: the error recorded
    reason: str | None = None  # dead: why
    by: str | None = None  # replayed, cancel_requested, removed: who or what
    message: str | None = None  # rescheduled: the handler's message
    count: int | None = None  # cleaned: how many jobs


@dataclass(frozen=True, slots=True)
class EventLag:
    """How far a consumer group of a queue's events stream is behind: ``pending`` delivered and
    not acknowledged, ``lag`` not yet delivered; ``lost`` when the stream was trimmed past
    entries the group never read (the events in between are gone: a gap)."""

    queue: str
    group: str
    pending: int
    lag: int | None
    lost: bool


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
    # read with the listing's scores: only in a listing of delayed or active jobs
    due_at: datetime | None = None
    lease_until: datetime | None = None

    def running_for(self, now: datetime | None = None) -> timedelta | None:
        """How long its current attempt has run (active jobs only)."""
        return _elapsed(self.state == JobState.ACTIVE, self.started_at, now)

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
class QueueCounts:
    queue: str
    waiting: int
    delayed: int
    active: int
    completed: int
    dead: int
    paused: bool
    completed_trimmed: int
    dead_trimmed: int

    @property
    def pending(self) -> int:
        return self.waiting + self.delayed + self.active


@dataclass(frozen=True, slots=True)
class GroupState:
    """One group of a queue, as a snapshot."""

    group: str
    waiting: int
    active: int
    paused: bool
    limited_until: datetime | None
    ready: bool
    concurrency: int | None
    rate: RateLimit | None
    weight: float | None

    @property
    def state(self) -> str:
        if self.paused:
            return "paused"
        if self.limited_until is not None:
            return "limited"
        if self.ready:
            return "ready"
        if self.waiting and self.concurrency is not None and self.active >= self.concurrency:
            return "at-capacity"
        return "idle" if not self.waiting else "waiting"


@dataclass(frozen=True, slots=True)
class WorkerInfo:
    """A live worker as it last reported itself (it does so every heartbeat, lease/3).

    A worker is *alive* while ``alive_until`` (its last heartbeat plus three heartbeat
    intervals, by the Redis server's clock) is in the future; the others missed three
    heartbeats, are gone, and are never listed."""

    id: str  # host:pid:suffix unless the worker was given a name
    host: str
    pid: int
    queues: tuple[str, ...]
    concurrency: int
    running: int  # jobs it was running at its last heartbeat
    jobs: tuple[str, ...]  # their ids (at most the first 100)
    started_at: datetime | None
    version: str  # the Corral it runs
    heartbeat: timedelta  # how often it reports (lease/3)
    last_heartbeat: datetime | None = None  # read from Redis; None before it was written
    alive_until: datetime | None = None
