"""The storage schema: every field code of a job hash and a queue's meta hash, and the JSON
shapes stored in them, decoded once into the read models of ``corral.models`` (and encoded from
them). Only the engine imports this module; the Lua scripts use the same codes (``_lib.lua``
lists them) and a test checks the two agree.

Job hash fields (the payload lives in its own key, ``d:<id>``): n name, g group, p priority,
s sequence, ma max attempts, a attempt, o options JSON, st state, ct/sa/fa created, started,
finished (ms), tk token, wk worker, r result JSON, le last error JSON, eh error history JSON,
dr dead reason, pg progress JSON, rs reschedules, sl stalls, xs max stalls, xr max reschedules,
kc/kd keep completed/dead ms, wt waiters, uk unknown since (ms), cx cancellation JSON,
rp replays JSON. Fields at their default are not stored (priority 500, no group, ...).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import orjson

from corral.groups import RateLimit
from corral.models import (
    Cancellation,
    DeadReason,
    ErrorRecord,
    GroupState,
    JobEvent,
    JobInfo,
    JobOverrides,
    JobState,
    JobSummary,
    QueueCounts,
    QueueEvent,
    Replay,
    WorkerInfo,
)
from corral.options import Priority
from corral.retry import Backoff, Exponential, Fixed, Linear
from corral.timing import from_epoch_ms, to_ms

# -- job hash -----------------------------------------------------------------------------------

NAME: Final = "n"
GROUP: Final = "g"
PRIORITY: Final = "p"
MAX_ATTEMPTS: Final = "ma"
ATTEMPT: Final = "a"
OPTIONS: Final = "o"
STATE: Final = "st"
CREATED: Final = "ct"
STARTED: Final = "sa"
FINISHED: Final = "fa"
WORKER: Final = "wk"
RESULT: Final = "r"
LAST_ERROR: Final = "le"
ERRORS: Final = "eh"
DEAD_REASON: Final = "dr"
PROGRESS: Final = "pg"
RESCHEDULES: Final = "rs"
STALLS: Final = "sl"
CANCELLATION: Final = "cx"
REPLAYS: Final = "rp"
PAYLOAD: Final = "d"  # not a hash field: the payload key, merged in by the reader

JOB_FIELDS: Final = (
    NAME, GROUP, PRIORITY, "s", MAX_ATTEMPTS, ATTEMPT, OPTIONS, STATE, CREATED, STARTED,
    FINISHED, "tk", WORKER, RESULT, LAST_ERROR, ERRORS, DEAD_REASON, PROGRESS, RESCHEDULES,
    STALLS, "xs", "xr", "kc", "kd", "wt", "uk", CANCELLATION, REPLAYS,
)  # fmt: skip
"""Every field a job hash may hold (the Lua scripts write no other: a test checks)."""

SUMMARY_FIELDS: Final = (
    NAME, STATE, GROUP, PRIORITY, ATTEMPT, MAX_ATTEMPTS, CREATED, STARTED, FINISHED,
    LAST_ERROR, DEAD_REASON, WORKER, RESCHEDULES,
)  # fmt: skip
"""What a listing reads of each job (one HMGET)."""

# -- queue meta hash ----------------------------------------------------------------------------

COUNT_FIELDS: Final = ("waiting", "paused", "completed_trimmed", "dead_trimmed")
QUEUE_GROUP_CONCURRENCY: Final = "gconc"
QUEUE_MAX_JOBS: Final = "max_jobs"
"""The cap on a queue's waiting + delayed jobs (enqueue.lua reads it); absent: no cap."""
QUEUE_SETTINGS: Final = frozenset(
    {
        "completed_age",
        "completed_max",
        "dead_age",
        "dead_max",
        QUEUE_GROUP_CONCURRENCY,
        "grate_n",
        "grate_w",
        "rate_n",
        "rate_w",
        "ev",
    }
)
"""Queue-wide settings kept in meta: retention (completed_age, completed_max, dead_age,
dead_max), limits (gconc: running jobs per group; grate_n/grate_w: starts per window per group;
rate_n/rate_w: starts per window for the queue; 0 removes a limit) and ev (1: record every
transition in the capped events stream)."""


# -- small decoders ---------------------------------------------------------------------------


def number(value: Any, default: int = 0) -> int:
    """A counter as a hash holds it: a missing or garbled value (a malformed job, a field
    written by hand as "3.0") reads as ``default`` rather than failing the read."""
    try:
        return int(value)  # the common case first: it is read for every claimed job
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default


def json_value(raw: str | None, default: Any = None) -> Any:
    """A JSON field; text that is not JSON (written by hand) is kept as text."""
    if raw is None or raw == "":
        return default
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def _state(raw: str | None, default: JobState = JobState.WAITING) -> JobState:
    try:
        return JobState(raw) if raw else default
    except ValueError:
        return default


# -- errors, cancellations, replays -------------------------------------------------------------


def encode_error(error: ErrorRecord) -> str:
    at = error.at.timestamp() * 1000 if error.at is not None else time.time() * 1000
    record: dict[str, Any] = {
        "type": error.type,
        "message": error.message,
        "traceback": error.traceback,
        "attempt": error.attempt,
        "at": int(at),
        "worker": error.worker,
    }
    if error.types:
        record["mro"] = list(error.types)  # what error-type filters match subclasses with
    return to_json(record)


def decode_error(raw: Any) -> ErrorRecord | None:
    if not isinstance(raw, dict):
        return None
    return ErrorRecord(
        attempt=number(raw.get("attempt")),
        type=_text(raw.get("type")),
        message=_text(raw.get("message")),
        traceback=_text(raw.get("traceback")),
        at=from_epoch_ms(raw.get("at")),
        worker=raw.get("worker") if isinstance(raw.get("worker"), str) else None,
        types=_chain(raw.get("mro")),
    )


def _chain(raw: Any) -> tuple[str, ...]:
    return tuple(str(t) for t in raw) if isinstance(raw, list) else ()


def _errors(raw: str | None) -> list[ErrorRecord]:
    history = json_value(raw, [])
    if not isinstance(history, list):
        return []
    return [e for e in (decode_error(item) for item in history) if e is not None]


def decode_cancellation(raw: str | None) -> Cancellation | None:
    value = json_value(raw)
    if not isinstance(value, dict):
        return None
    return Cancellation(
        by=_text(value.get("by")) or "?",
        reason=_text(value.get("reason")),
        at=from_epoch_ms(value.get("at")),
    )


def _replays(raw: str | None) -> list[Replay]:
    items = json_value(raw, [])
    if not isinstance(items, list):
        return []
    return [
        Replay(
            by=_text(r.get("by")),
            at=from_epoch_ms(r.get("at")),
            reason=_text(r.get("reason")),
            edited=bool(r.get("edited")),
        )
        for r in items
        if isinstance(r, dict)
    ]


# -- options a job carries ----------------------------------------------------------------------


def encode_backoff(backoff: Backoff) -> dict[str, Any]:
    if isinstance(backoff, Fixed):
        return {"t": "fixed", "w": to_ms(backoff.wait), "j": backoff.jitter}
    if isinstance(backoff, Linear):
        return {
            "t": "linear",
            "w": to_ms(backoff.step),
            "m": to_ms(backoff.cap),
            "j": backoff.jitter,
        }
    if isinstance(backoff, Exponential):
        return {
            "t": "exp",
            "w": to_ms(backoff.base),
            "f": backoff.factor,
            "m": to_ms(backoff.cap),
            "j": backoff.jitter,
        }
    return {"t": "custom", "j": backoff.jitter}  # a function: the definition holds it


def decode_backoff(spec: Any) -> Backoff | None:
    """A stored backoff; None for ``custom`` (or anything unreadable): the definition's."""
    if not isinstance(spec, dict):
        return None
    kind = spec.get("t")
    jitter = float(spec.get("j", 0.0))
    try:
        if kind == "fixed":
            return Fixed(timedelta(milliseconds=spec["w"]), jitter)
        if kind == "linear":
            return Linear(
                timedelta(milliseconds=spec["w"]), timedelta(milliseconds=spec["m"]), jitter
            )
        if kind == "exp":
            return Exponential(
                timedelta(milliseconds=spec["w"]),
                float(spec["f"]),
                timedelta(milliseconds=spec["m"]),
                jitter,
            )
    except (KeyError, TypeError, ValueError):
        return None
    return None


def encode_overrides(overrides: JobOverrides | None) -> str:
    """'' when the definition's options apply (nothing is stored with the job)."""
    if overrides is None:
        return ""
    # "b" is always there, so a job that overrides its timeout to none still carries options
    backoff = overrides.backoff
    out: dict[str, Any] = {"b": {"t": "custom"} if backoff is None else encode_backoff(backoff)}
    if overrides.timeout is not None:
        out["t"] = to_ms(overrides.timeout)
    return to_json(out)


def decode_overrides(raw: str | None) -> JobOverrides | None:
    if not raw or raw == "{}":
        return None
    value = json_value(raw, {})
    if not isinstance(value, dict) or not value:
        return None
    timeout_ms = value.get("t")
    timeout = None
    if isinstance(timeout_ms, int | float) and timeout_ms > 0:
        timeout = timedelta(milliseconds=timeout_ms)
    return JobOverrides(timeout=timeout, backoff=decode_backoff(value.get("b")))


class OverridesCache:
    """Decodes a claimed job's options string once per distinct string (jobs of one
    definition share it), not once per job. Bounded: cleared when it grows past ``size``."""

    __slots__ = ("_known", "_size")

    def __init__(self, size: int = 1024) -> None:
        self._known: dict[str, JobOverrides | None] = {}
        self._size = size

    def __call__(self, raw: str) -> JobOverrides | None:
        try:
            return self._known[raw]
        except KeyError:
            if len(self._known) >= self._size:
                self._known.clear()
            decoded = self._known[raw] = decode_overrides(raw)
            return decoded


# -- read models --------------------------------------------------------------------------------


def decode_job(
    queue: str,
    job_id: str,
    raw: Mapping[str, str],
    payload: str | None,
    delayed_score: float | None = None,
    active_score: float | None = None,
) -> JobInfo:
    """The read model from a job hash (tolerates missing fields of malformed jobs), with the
    job's scores in the ``delayed`` (due time) and ``active`` (lease deadline) sets."""
    state = _state(raw.get(STATE))
    return JobInfo(
        id=job_id,
        queue=queue,
        name=raw.get(NAME, ""),
        state=state,
        payload=json_value(payload),
        group=raw.get(GROUP) or None,
        priority=number(raw.get(PRIORITY), Priority.NORMAL),  # the default is not stored
        attempt=number(raw.get(ATTEMPT)),
        max_attempts=number(raw.get(MAX_ATTEMPTS), 1),
        created_at=from_epoch_ms(raw.get(CREATED)),
        started_at=from_epoch_ms(raw.get(STARTED)),
        finished_at=from_epoch_ms(raw.get(FINISHED)),
        progress=json_value(raw.get(PROGRESS)),
        result=json_value(raw.get(RESULT)),
        errors=_errors(raw.get(ERRORS)),
        dead_reason=raw.get(DEAD_REASON),
        worker=raw.get(WORKER),
        reschedules=number(raw.get(RESCHEDULES)),
        stalls=number(raw.get(STALLS)),
        overrides=decode_overrides(raw.get(OPTIONS)),
        cancellation=decode_cancellation(raw.get(CANCELLATION)),
        replays=_replays(raw.get(REPLAYS)),
        due_at=from_epoch_ms(delayed_score) if state == JobState.DELAYED else None,
        lease_until=from_epoch_ms(active_score) if state == JobState.ACTIVE else None,
    )


def decode_summary(
    job_id: str, row: Sequence[str | None], score: float | None = None
) -> JobSummary | None:
    """A listing row from an HMGET of SUMMARY_FIELDS; None when the job is gone. ``score``:
    its score in the set it was listed from, a due time for a delayed job and a lease
    deadline for an active one (a job that moved on since is shown as it is now)."""
    if all(v is None for v in row):
        return None
    f = dict(zip(SUMMARY_FIELDS, row, strict=True))
    err = decode_error(json_value(f[LAST_ERROR], {}))
    state = f[STATE] or "?"
    return JobSummary(
        id=job_id,
        name=f[NAME] or "",
        state=state,
        group=f[GROUP] or None,
        priority=number(f[PRIORITY], Priority.NORMAL),
        attempt=number(f[ATTEMPT]),
        max_attempts=number(f[MAX_ATTEMPTS], 1),
        created_at=from_epoch_ms(f[CREATED]),
        started_at=from_epoch_ms(f[STARTED]),
        finished_at=from_epoch_ms(f[FINISHED]),
        error_type=err.type if err else None,
        error_message=err.message if err else None,
        dead_reason=f[DEAD_REASON],
        worker=f[WORKER],
        reschedules=number(f[RESCHEDULES]),
        error_types=err.kinds if err else (),
        due_at=from_epoch_ms(score) if state == JobState.DELAYED else None,
        lease_until=from_epoch_ms(score) if state == JobState.ACTIVE else None,
    )


def decode_counts(
    queue: str, meta: Sequence[str | None], delayed: int, active: int, completed: int, dead: int
) -> QueueCounts:
    """``meta``: an HMGET of COUNT_FIELDS."""
    waiting, paused, completed_trimmed, dead_trimmed = meta
    return QueueCounts(
        queue=queue,
        waiting=number(waiting),
        delayed=int(delayed),
        active=int(active),
        completed=int(completed),
        dead=int(dead),
        paused=number(paused) > 0,
        completed_trimmed=number(completed_trimmed),
        dead_trimmed=number(dead_trimmed),
    )


def decode_group(
    group: str,
    queue_limit: str | None,
    waiting: int,
    active: str | None,
    paused: Any,
    limited: float | None,
    ready: float | None,
    limit: str | None,
    rate: str | None,
    weight: str | None,
) -> GroupState:
    if limit is None and number(queue_limit) > 0:
        limit = queue_limit  # the queue-wide default applies to this group
    return GroupState(
        group=group,
        waiting=int(waiting),
        active=number(active),
        paused=bool(paused),
        limited_until=None if limited is None else from_epoch_ms(limited),
        ready=ready is not None,
        concurrency=None if limit is None else number(limit),
        rate=RateLimit.decode(rate),
        weight=None if weight is None else float(weight),
    )


# -- events stream entries --------------------------------------------------------------------


def _opt_int(raw: str | None) -> int | None:
    return None if raw in (None, "") else number(raw)


def _opt_ms(raw: str | None) -> timedelta | None:
    return None if raw in (None, "") else timedelta(milliseconds=number(raw))


def decode_event(queue: str, stream_id: str, fields: Mapping[str, str]) -> QueueEvent:
    """One entry of a queue's events stream (the field names are the Lua scripts' ``emit``)."""
    ms = number(stream_id.split("-", 1)[0])
    err = fields.get("err")
    result = fields.get("res")
    return QueueEvent(
        stream_id=stream_id,
        queue=queue,
        kind=fields.get("e", ""),
        job_id=fields.get("id", ""),
        at=from_epoch_ms(ms) or datetime.fromtimestamp(0, UTC),
        attempt=_opt_int(fields.get("a")),
        name=(fields.get("n") or None) if fields.get("e") != "cleaned" else None,
        group=fields.get("g") or None,
        priority=_opt_int(fields.get("p")),
        max_attempts=_opt_int(fields.get("ma")),
        worker=fields.get("w") or None,
        delay=_opt_ms(fields.get("d")),
        duration=_opt_ms(fields.get("ms")),
        result=None if result in (None, "null") else json_value(result),
        error=decode_error(json_value(err)) if err else None,
        reason=fields.get("r") or None,
        by=fields.get("by") or None,
        message=fields.get("m") or None,
        count=_opt_int(fields.get("n")) if fields.get("e") == "cleaned" else None,
    )


# -- the registry of live workers ----------------------------------------------------------------

ALIVE_HEARTBEATS: Final = 3
"""A worker counts as alive until it has missed this many heartbeats."""
WORKER_JOBS_LISTED: Final = 100  # ids of running jobs kept in a worker's entry, at most


def worker_window_ms(info: WorkerInfo) -> int:
    """How long after a heartbeat the worker still counts as alive."""
    return ALIVE_HEARTBEATS * max(1, to_ms(info.heartbeat))


def encode_worker(info: WorkerInfo) -> str:
    """A worker's entry in ``<prefix>:workers``: host, pid, queues, concurrency, running
    (a count) and jobs (ids), started (ms), version, hb (heartbeat interval, ms)."""
    return to_json(
        {
            "host": info.host,
            "pid": info.pid,
            "queues": list(info.queues),
            "concurrency": info.concurrency,
            "running": info.running,
            "jobs": list(info.jobs[:WORKER_JOBS_LISTED]),
            "started": None if info.started_at is None else epoch_ms(info.started_at),
            "version": info.version,
            "hb": to_ms(info.heartbeat),
        }
    )


def decode_worker(worker_id: str, raw: str, alive_until_ms: Any) -> WorkerInfo | None:
    """An entry as ``workers.lua`` lists it; None for one that is not ours to read."""
    value = json_value(raw)
    if not isinstance(value, dict):
        return None
    heartbeat_ms = number(value.get("hb"))
    until = number(alive_until_ms)
    queues, jobs = value.get("queues"), value.get("jobs")
    return WorkerInfo(
        id=worker_id,
        host=_text(value.get("host")),
        pid=number(value.get("pid")),
        queues=tuple(str(q) for q in queues) if isinstance(queues, list) else (),
        concurrency=number(value.get("concurrency")),
        running=number(value.get("running")),
        jobs=tuple(str(j) for j in jobs) if isinstance(jobs, list) else (),
        started_at=from_epoch_ms(value.get("started")),
        version=_text(value.get("version")),
        heartbeat=timedelta(milliseconds=heartbeat_ms),
        last_heartbeat=from_epoch_ms(until - ALIVE_HEARTBEATS * max(1, heartbeat_ms)),
        alive_until=from_epoch_ms(until),
    )


def epoch_ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


# -- deaths the reaper saw -----------------------------------------------------------------------


def decode_stalled_death(queue: str, fields: Sequence[str], reaper: str) -> JobEvent:
    """One job ``reap.lua`` sent to the dead set (its lease ran out too often): the 8 fields
    it lists, as the event a worker's on_dead hooks get. ``worker`` is the one that held it;
    ``duration`` runs from its start to now (its lease ran out somewhere in between)."""
    job_id, name, group, attempt, max_attempts, started, held_by, err = fields
    now = datetime.now(UTC)
    started_at = from_epoch_ms(started) or now
    return JobEvent(
        queue=queue,
        job_id=job_id,
        name=name,
        group=group or None,
        attempt=number(attempt),
        max_attempts=number(max_attempts),
        outcome="dead",
        worker=held_by or reaper,
        started_at=started_at,
        duration=max(now - started_at, timedelta(0)),
        error=decode_error(json_value(err)) if err else None,
        dead_reason=DeadReason.STALLED,
    )
