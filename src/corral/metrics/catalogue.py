"""Every Prometheus metric family Corral exposes, as data: the contract between the code that
produces metrics (the worker's ``--metrics-port``, the queue exporter ``corral metrics serve``)
and what consumes them (``deploy/``: alert rules, the Grafana dashboard, autoscaling).

No I/O and no prometheus-client here: the exporter builds its collectors from this table, the
tests check the shipped rules and dashboard against it, and ``docs/observability.md`` lists it.

Naming (Prometheus conventions): ``corral_`` prefix, snake_case, base units with the unit in the
name (``_seconds``, ``_ratio`` for 0..1), ``_total`` on counters and only on counters.
``corral_queue_*`` gauges describe a queue as it is now in Redis; ``corral_job_*`` histograms
observe one attempt; ``corral_jobs_*_total`` count jobs.

Two sources, so that N workers never each scan Redis and totals survive restarts:

- **worker** families are kept in each worker process (per attempt it runs) and reset when the
  process restarts, which ``rate()`` and ``increase()`` handle. With ``--processes`` the pool
  serves one merged view (prometheus-client's multiprocess mode; gauges say how they merge).
- **exporter** families are read from Redis by one process (``corral metrics serve``, or one
  worker given the flag): queue gauges, and lifetime counters the Lua scripts keep in each
  queue's ``meta`` hash, so they count every job whichever process moved it, and survive
  restarts of workers and of the exporter.

For the exporter: create each worker counter's series at 0 for the queues a worker serves when
it starts (and its job names and outcomes, all bounded). A series that first appears at 1 loses
that increment to ``rate()`` and ``increase()``, and the lease-expiry alert counts single events.

Labels: ``queue``, ``name`` (job name), ``outcome``, ``state``; job names and queues are
defined in code, so they are bounded. A tenant label (``group``) is opt-in on the two families
where per-tenant numbers answer a real question (who fails, who waits), and even then only the
top N groups get their own value, the rest ``other``: 10,000 tenants must not make 10,000
series. Never a job id or an error message as a label.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Literal

from corral.models import JobState


class Kind(StrEnum):
    COUNTER = "counter"
    GAUGE = "gauge"
    HISTOGRAM = "histogram"


class Source(StrEnum):
    """Which process exposes a family."""

    WORKER = "worker"
    EXPORTER = "exporter"


# How a worker gauge merges across the processes of a pool (prometheus-client's
# ``multiprocess_mode``); ``livesum`` ignores processes that exited.
MultiprocessMode = Literal["livesum", "liveall", "livemax", "livemin"]

ALLOWED_LABELS = frozenset({"queue", "name", "outcome", "state", "group"})
GROUP_OTHER = "other"
"""The ``group`` label value for every tenant outside the top N."""
GROUP_TOP_N = 20
"""Default number of groups that keep their own ``group`` value when the label is enabled."""
SLA_WINDOW_SECONDS = 3600
"""The window over which ``corral_queue_sla_attainment_ratio`` is measured."""

OUTCOMES: tuple[str, ...] = (
    "completed",
    "retried",
    "rescheduled",
    "dead",
    "cancelled",
    "lease_lost",
    "released",
)
"""How an attempt a worker claimed ended; exactly one per claim, so the values partition them
and ``sum without (outcome)`` is the number of claims. The words are the worker's own
(``WorkerStats``):

- ``completed``: the handler returned and the result was stored.
- ``retried``: the handler raised or timed out and the job will be tried again after backoff.
- ``rescheduled``: the handler raised ``Retry`` / ``RateLimited``: again later, no attempt counted.
- ``dead``: the job went to the dead-letter set (attempts exhausted, ``Fatal``, a payload that no
  longer validates, an unknown job name, too many reschedules).
- ``cancelled``: cancelled while running.
- ``lease_lost``: the lease was lost (heartbeat or acknowledgement refused): another worker owns
  the job now and this attempt's result was discarded.
- ``released``: handed back unrun or unfinished (shutdown after ``--grace``, or a job name this
  worker does not know, left for one that does); not a failure.

There is no ``failed``: a failed attempt is either ``retried`` or ``dead``, and a third value
would count one of them twice. Failures are ``outcome=~"retried|dead"``.
"""

FAILURE_OUTCOMES: tuple[str, ...] = ("retried", "dead")

QUEUE_STATES: tuple[str, ...] = tuple(s.value for s in JobState if s is not JobState.CANCELLED)
"""States a queue holds jobs in. Cancelled jobs are kept in the dead-letter set, so they are
counted under ``dead``, as ``corral info`` shows them."""

ENDED_STATES: tuple[str, ...] = tuple(s.value for s in JobState if s.terminal)
"""The terminal states a job can enter: completed, dead, cancelled."""

DURATION_BUCKETS: tuple[float, ...] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600,
)  # fmt: skip
"""Handler run time: from a 5 ms webhook fan-out to an hour-long report (the timeouts people
set), about two buckets per decade so p95 is read to within a factor of ~2."""

WAIT_BUCKETS: tuple[float, ...] = (
    0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600,
    86400,
)  # fmt: skip
"""Enqueue (or due) time to start: from a hot queue's 10 ms to a low tier's day. The bounds
include the SLA targets teams actually write (30 s, 1, 2, 5, 10, 30 min, 1, 2, 6, 24 h), so
``bucket{le=TARGET} / count`` is an exact attainment in PromQL too."""


@dataclass(frozen=True, slots=True)
class MetricFamily:
    """One metric family: what the exporter registers and the deploy assets may query."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...]
    source: Source
    buckets: tuple[float, ...] = ()
    label_values: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: _values())
    """Closed sets of values, for labels that have one (``outcome``, ``state``)."""
    optional_labels: tuple[str, ...] = ()
    """Labels added only when the operator enables them (``group``, top N + ``other``)."""
    multiprocess_mode: MultiprocessMode | None = None
    """For worker gauges: how the processes of a ``--processes`` pool merge."""

    @property
    def series_names(self) -> tuple[str, ...]:
        """The names its samples carry in an exposition (what PromQL selects)."""
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)

    @property
    def all_labels(self) -> tuple[str, ...]:
        return self.labels + self.optional_labels


def _values(**sets: tuple[str, ...]) -> Mapping[str, tuple[str, ...]]:
    return MappingProxyType(dict(sets))


# -- worker processes: what this process did --------------------------------------------------

JOBS_FINISHED = MetricFamily(
    name="corral_jobs_finished_total",
    kind=Kind.COUNTER,
    help="Attempts this worker claimed, by how they ended (outcome).",
    labels=("queue", "name", "outcome"),
    source=Source.WORKER,
    label_values=_values(outcome=OUTCOMES),
    optional_labels=("group",),
)
"""Per attempt, not per job: a job that fails twice then succeeds adds retried, retried,
completed. The rate of attempts is what a worker sees and what failure ratios need; jobs that
reached an end state are counted, restart-proof, by ``corral_queue_jobs_ended_total``."""

JOB_DURATION = MetricFamily(
    name="corral_job_duration_seconds",
    kind=Kind.HISTOGRAM,
    help="Time a handler ran, per attempt, from its start to its outcome.",
    labels=("queue", "name"),
    source=Source.WORKER,
    buckets=DURATION_BUCKETS,
)
"""No ``outcome`` label: it would multiply 19 bucket series by seven for a rare question
(how long did the failures take), which the job's own error record answers."""

JOB_WAIT = MetricFamily(
    name="corral_job_wait_seconds",
    kind=Kind.HISTOGRAM,
    help="Time from a job's enqueue, or its due time if later, to the start of an attempt.",
    labels=("queue", "name"),
    source=Source.WORKER,
    buckets=WAIT_BUCKETS,
    optional_labels=("group",),
)
"""From the due time, not the enqueue time, for a delayed job or a retry after backoff: a job
asked to run in an hour that starts on time waited zero. This is the latency users feel, and the
quantity the SLA is written in. The opt-in ``group`` label shows which tenants wait."""

LEASE_EXPIRIES = MetricFamily(
    name="corral_lease_expiries_total",
    kind=Kind.COUNTER,
    help="Expired leases this worker's reaper took back (to waiting, or dead after max_stalls).",
    labels=("queue",),
    source=Source.WORKER,
)
"""The other side of ``corral_fencing_rejections_total``. Expiries without rejections: workers
die (OOM kill, SIGKILL, lost node). Expiries with rejections: workers live but miss heartbeats
(an event loop blocked by CPU-bound code in an async handler)."""

FENCING_REJECTIONS = MetricFamily(
    name="corral_fencing_rejections_total",
    kind=Kind.COUNTER,
    help="Writes (acknowledgement, heartbeat) Redis refused because the job's token had changed.",
    labels=("queue",),
    source=Source.WORKER,
)
"""Each is the fencing guarantee at work: a late worker prevented from overwriting a newer
attempt. It counts refused writes, so one lost lease may count a heartbeat and then the result;
``outcome="lease_lost"`` counts the attempts."""

WORKER_JOBS_RUNNING = MetricFamily(
    name="corral_worker_jobs_running",
    kind=Kind.GAUGE,
    help="Jobs this worker is running now.",
    labels=("queue",),
    source=Source.WORKER,
    multiprocess_mode="livesum",
)
"""With ``corral_worker_concurrency``: a pod's utilisation, the per-worker view a queue gauge
cannot give (are workers saturated, or idle while jobs wait?)."""

WORKER_CONCURRENCY = MetricFamily(
    name="corral_worker_concurrency",
    kind=Kind.GAUGE,
    help="Jobs this worker may run at once (--concurrency; a pool sums its processes).",
    labels=(),
    source=Source.WORKER,
    multiprocess_mode="livesum",
)

# -- the queue exporter: one reader of Redis -----------------------------------------------------

QUEUE_JOBS = MetricFamily(
    name="corral_queue_jobs",
    kind=Kind.GAUGE,
    help="Jobs in a queue now, by state (waiting = due and ready; dead includes cancelled).",
    labels=("queue", "state"),
    source=Source.EXPORTER,
    label_values=_values(state=QUEUE_STATES),
)
"""One family with a ``state`` label rather than one gauge per state: ``sum by (state)``
stacks in one panel, and summing the states is meaningful (the jobs a queue holds in Redis).
Read in O(1) per state from the structures the engine keeps per state."""

QUEUE_PAUSED = MetricFamily(
    name="corral_queue_paused",
    kind=Kind.GAUGE,
    help="Whether the queue is paused (workers claim nothing from it): 1 or 0.",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""A flag, not a state: a paused queue's jobs stay waiting. Alerts about backlog skip paused
queues, and a queue left paused alerts on its own."""

QUEUE_OLDEST_WAITING_AGE = MetricFamily(
    name="corral_queue_oldest_waiting_age_seconds",
    kind=Kind.GAUGE,
    help="How long the oldest due job has been waiting (0 when none waits).",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""Now minus the later of enqueue and due time, over due jobs only: a job delayed ten hours
does not count until its time comes. The backlog alerts and the autoscaler use it: it says how
late work is, whatever the jobs cost, where a depth of 1,000 may be one second or one hour."""

DEAD_OLDEST_AGE = MetricFamily(
    name="corral_dead_oldest_age_seconds",
    kind=Kind.GAUGE,
    help="Age of the oldest job in the dead-letter set (0 when it is empty).",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""Shows dead letters nobody looked at: a dead set that is small but a week old. The name is
the issue's (without ``queue_``), kept so the exporter and the assets agree on one spelling."""

QUEUE_GROUPS_WAITING = MetricFamily(
    name="corral_queue_groups_waiting",
    kind=Kind.GAUGE,
    help="Groups (tenants) that have at least one waiting job.",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""How many tenants share the backlog, without a label per tenant: 1,000 jobs of one shop is
a noisy neighbour held back by fairness; 1,000 jobs of 500 shops is too little capacity."""

WORKERS_ALIVE = MetricFamily(
    name="corral_workers_alive",
    kind=Kind.GAUGE,
    help="Worker processes serving the queue whose heartbeat is recent.",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""Per queue served, since a worker serves a list of queues and the question is "does anyone
serve this queue": a queue with waiting jobs and no worker alerts. A ``--processes`` pool counts
each process. Read from Redis, so it is right when every worker is gone (their own metrics would
then be gone too)."""

JOBS_ENQUEUED = MetricFamily(
    name="corral_jobs_enqueued_total",
    kind=Kind.COUNTER,
    help="Jobs enqueued to the queue since it was created (kept in Redis).",
    labels=("queue", "name"),
    source=Source.EXPORTER,
)
"""Producers are web processes that expose no metrics of their own, so this lives in Redis:
the enqueue script adds the batch's count per job name, one increment per batch."""

QUEUE_JOBS_ENDED = MetricFamily(
    name="corral_queue_jobs_ended_total",
    kind=Kind.COUNTER,
    help="Jobs that reached a terminal state, since the queue was created (kept in Redis).",
    labels=("queue", "state"),
    source=Source.EXPORTER,
    label_values=_values(state=ENDED_STATES),
)
"""The restart-proof lifetime totals, counted by the scripts that make each transition (so a
job the reaper buries or an operator cancels counts too, which no worker sees). Counted per job,
not per attempt. Named like ``corral_queue_jobs``: that gauge counts jobs in a state now, this
counter jobs that ever entered one. No ``name`` label: a hash field per job name and state on
every completion costs Redis time on the hot path; workers count by name."""

QUEUE_SLA_TARGET = MetricFamily(
    name="corral_queue_sla_target_seconds",
    kind=Kind.GAUGE,
    help="The queue's SLA: a job should start within this many seconds (absent without an SLA).",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""``queue.set_sla(p=0.95, within=timedelta(minutes=5))`` gives ``within`` here and ``p`` in
``corral_queue_sla_objective_ratio``. Being series, the targets reach PromQL: the backlog alert
uses each queue's own target as its threshold."""

QUEUE_SLA_OBJECTIVE = MetricFamily(
    name="corral_queue_sla_objective_ratio",
    kind=Kind.GAUGE,
    help="The share of jobs the SLA says must start within the target (p, 0..1).",
    labels=("queue",),
    source=Source.EXPORTER,
)

QUEUE_SLA_ATTAINMENT = MetricFamily(
    name="corral_queue_sla_attainment_ratio",
    kind=Kind.GAUGE,
    help="Share of jobs started in the last hour that waited at most the SLA target (0..1).",
    labels=("queue",),
    source=Source.EXPORTER,
)
"""Measured by the exporter over ``SLA_WINDOW_SECONDS``, for any target (the wait histogram can
only answer at its bucket bounds). Absent when no job started in the window, so an idle queue
is neither meeting nor missing its SLA."""

CATALOGUE: tuple[MetricFamily, ...] = (
    JOBS_FINISHED,
    JOB_DURATION,
    JOB_WAIT,
    LEASE_EXPIRIES,
    FENCING_REJECTIONS,
    WORKER_JOBS_RUNNING,
    WORKER_CONCURRENCY,
    QUEUE_JOBS,
    QUEUE_PAUSED,
    QUEUE_OLDEST_WAITING_AGE,
    DEAD_OLDEST_AGE,
    QUEUE_GROUPS_WAITING,
    WORKERS_ALIVE,
    JOBS_ENQUEUED,
    QUEUE_JOBS_ENDED,
    QUEUE_SLA_TARGET,
    QUEUE_SLA_OBJECTIVE,
    QUEUE_SLA_ATTAINMENT,
)

BY_NAME: Mapping[str, MetricFamily] = MappingProxyType({m.name: m for m in CATALOGUE})


def family_of(series_name: str) -> MetricFamily | None:
    """The family a sample name belongs to (``corral_job_wait_seconds_bucket`` -> the wait
    histogram), or None if it is not Corral's."""
    for metric in CATALOGUE:
        if series_name in metric.series_names:
            return metric
    return None
