"""What crosses the engine's edge to and from the scripts: jobs to store, jobs claimed, and
their argument and reply layouts (kept apart from the engine so the batcher and the engine do
not import each other)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from corral.engine.schema import encode_overrides, number
from corral.models import JobEvent, JobOverrides


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the jobs of one definition (with one set of options) share; sent once per batch."""

    name: str
    priority: int = 500  # Priority.NORMAL, which enqueue does not store
    max_attempts: int = 3
    overrides: JobOverrides | None = None  # None: the definition's options apply
    max_stalls: int = 1
    max_reschedules: int = 25
    keep_completed_ms: int = -1
    keep_dead_ms: int = -1
    wire: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the script's arguments for this spec, made once (a spec serves many enqueues)
        wire = (
            self.name,
            self.priority,
            self.max_attempts,
            encode_overrides(self.overrides),
            self.max_stalls,
            self.max_reschedules,
            self.keep_completed_ms,
            self.keep_dead_ms,
        )
        object.__setattr__(self, "wire", wire)


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 1 µs more to make, per job
class NewJob:
    """A job ready to store: validated, serialised, with options flattened to numbers."""

    id: str
    payload: str
    group: str
    delay_ms: int
    spec: JobSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def priority(self) -> int:
        return self.spec.priority


def enqueue_args(jobs: Sequence[NewJob]) -> list[Any]:
    """The enqueue script's arguments after the base: the distinct specs, then 5 per job."""
    if len(jobs) == 1:  # an awaited enqueue: no bookkeeping
        job = jobs[0]
        return [1, *job.spec.wire, job.id, job.payload, job.group, job.delay_ms, 1]
    index: dict[int, int] = {}
    specs: list[Any] = []
    rows: list[Any] = []
    for job in jobs:
        spec = job.spec
        number_ = index.get(id(spec))
        if number_ is None:
            number_ = index[id(spec)] = len(index) + 1
            specs.extend(spec.wire)
        rows += (job.id, job.payload, job.group, job.delay_ms, number_)
    return [len(index), *specs, *rows]


@dataclass(slots=True)  # not frozen: made for every job a worker runs (frozen: +2 µs each)
class Claimed:
    """A leased job as the claim script hands it out, its options decoded."""

    id: str
    name: str
    payload: str
    attempt: int
    max_attempts: int
    overrides: JobOverrides | None  # None: the definition's options apply
    token: str
    group: str
    reschedules: int = 0


@dataclass(frozen=True, slots=True)
class Reaped:
    """What one reap did: jobs put back to waiting, jobs dead, and the stalled deaths as the
    events a worker's on_dead hooks get (cancelled ones are not deaths)."""

    requeued: int
    dead: int
    deaths: tuple[JobEvent, ...] = ()

    @property
    def counts(self) -> tuple[int, int]:
        return self.requeued, self.dead


@dataclass(frozen=True, slots=True)
class ClaimResult:
    jobs: list[Claimed]
    next_due_ms: int | None
    paused: bool


def parse_claim(raw: list[Any], overrides: Callable[[str], JobOverrides | None]) -> ClaimResult:
    """The claim script's reply: ``{next due, paused, token, then per job "id NUL name NUL
    attempt NUL max NUL reschedules NUL options NUL payload", group}``."""
    nxt, token = int(raw[0]), str(raw[2])
    jobs = []
    for i in range(3, len(raw), 2):
        job_id, name, attempt, max_attempts, reschedules, options, payload = raw[i].split("\x00", 6)
        jobs.append(
            Claimed(
                job_id,
                name,
                payload,
                int(attempt),
                number(max_attempts),
                None if options == "{}" else overrides(options),  # most jobs carry none
                token,
                raw[i + 1],
                number(reschedules),
            )
        )
    return ClaimResult(jobs, None if nxt < 0 else nxt, raw[1] == 1)
