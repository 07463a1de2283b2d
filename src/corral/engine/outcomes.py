"""What a transition script answered, for every script with more than one outcome: the
scripts' integer replies are read here and nowhere above the engine."""

from __future__ import annotations

from enum import IntEnum


class Cancelled(IntEnum):
    CANCELLED = 1  # it was waiting or delayed: it ended now
    SIGNALLED = 2  # it is running: its worker is told and stops it
    ENDED = 0  # it had ended already: nothing to do
    NO_JOB = -1


class Removed(IntEnum):
    REMOVED = 1
    NO_JOB = 0
    RUNNING = -2  # refused: cancel it instead


class Promoted(IntEnum):
    PROMOTED = 1
    NOT_DELAYED = 0
    NO_JOB = -1


class Reprioritized(IntEnum):
    CHANGED = 1
    NOT_PENDING = 0  # neither waiting nor delayed
    NO_JOB = -1


class Failed(IntEnum):
    RECORDED = 1  # retrying, or dead as asked
    CANCELLED = 3  # its cancellation was asked while it ran: it ends cancelled, not retried
    REFUSED = 0  # stale token: the job was re-leased


class Rescheduled(IntEnum):
    RESCHEDULED = 1
    DEAD = 2  # too many reschedules
    CANCELLED = 3  # its cancellation was asked while it ran
    REFUSED = 0  # stale token: the job was re-leased


class Deferred(IntEnum):
    DEFERRED = 1  # handed back for a worker that knows the job
    DEAD = 2  # its grace is over (unknown_job)
    CANCELLED = 3  # its cancellation was asked while it ran
    REFUSED = 0  # stale token
