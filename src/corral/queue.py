"""Queue handle: counts, pause/resume, limits, and the operator's tools for one queue:
listing and finding jobs, drain, clean, obliterate, cancel, promote, retry, remove."""

from __future__ import annotations

import getpass
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from corral.engine.keys import check_queue_name
from corral.engine.ops import LISTABLE, Ops
from corral.errors import ConfigError, JobNotFound, QueueNotFound
from corral.filters import JobFilter, JobSummary
from corral.group_handle import Group, group_state
from corral.groups import GroupState, RateLimit, check_concurrency
from corral.job import PRIORITY_MAX, PRIORITY_MIN, JobInfo, check_group
from corral.schedule import to_ms

__all__ = ["Group", "Queue", "QueueCounts"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called by long operations after each bounded step."""

if TYPE_CHECKING:
    from corral.app import App
    from corral.dead_letters import DeadLetters
    from corral.engine import Engine


def operator() -> str:
    """Who is acting, for audit records: ``user@host``."""
    try:
        user = getpass.getuser()
    except Exception:
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


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


class Queue:
    """Operations on one queue by name; needs no job code, so ops tools can use it."""

    def __init__(self, app: App, name: str) -> None:
        self.app = app
        self.name = check_queue_name(name)

    async def _existing(self) -> Engine:
        """The engine, once the queue is known to exist: operations on a name nobody enqueued
        to are refused (a typo must not pause or drain a phantom queue)."""
        engine = await self.app.engine()
        if not await engine.queue_exists(self.name):
            raise QueueNotFound(self.name, await engine.queues())
        return engine

    async def exists(self) -> bool:
        return await (await self.app.engine()).queue_exists(self.name)

    async def create(self) -> None:
        """Declare the queue before any job is enqueued to it (idempotent); configuring it
        (limits, retention, events) declares it too."""
        await (await self.app.engine()).register_queue(self.name)

    async def counts(self) -> QueueCounts:
        engine = await self._existing()
        c = await engine.counts(self.name)
        return QueueCounts(
            queue=self.name,
            waiting=c["waiting"],
            delayed=c["delayed"],
            active=c["active"],
            completed=c["completed"],
            dead=c["dead"],
            paused=bool(c["paused"]),
            completed_trimmed=c["completed_trimmed"],
            dead_trimmed=c["dead_trimmed"],
        )

    async def pause(self) -> None:
        """Workers stop claiming from this queue; running jobs finish."""
        await (await self._existing()).set_paused(self.name, True)

    async def resume(self) -> None:
        await (await self._existing()).set_paused(self.name, False)

    async def set_retention(
        self,
        *,
        completed_age: timedelta | None = None,
        completed_max: int | None = None,
        dead_age: timedelta | None = None,
        dead_max: int | None = None,
    ) -> None:
        """Queue-wide retention; jobs may override the ages with keep_completed/keep_dead."""
        limits: dict[str, int] = {}
        for name, age in (("completed_age", completed_age), ("dead_age", dead_age)):
            if age is not None:
                if age < timedelta(0):
                    raise ConfigError(f"{name} must not be negative")
                limits[name] = to_ms(age)
        for name, count in (("completed_max", completed_max), ("dead_max", dead_max)):
            if count is not None:
                if count < 0:
                    raise ConfigError(f"{name} must not be negative")
                limits[name] = count
        if limits:
            await (await self.app.engine()).configure(self.name, **limits)

    async def set_events(self, enabled: bool) -> None:
        """Record every transition of this queue in its capped events stream (``events`` key,
        ~10,000 entries) for consumers such as a history sink. Off by default: each entry
        costs about as much Redis time as the transition itself."""
        await (await self.app.engine()).configure(self.name, ev=1 if enabled else 0)

    async def set_limits(
        self,
        *,
        group_concurrency: int | None = None,
        group_rate: RateLimit | None = None,
        rate: RateLimit | None = None,
        clear: bool = False,
    ) -> None:
        """Limits enforced by the claim script across every worker and process:
        ``group_concurrency`` running jobs per group, ``group_rate`` starts per group, ``rate``
        starts for the whole queue. ``clear=True`` first removes all three."""
        check_concurrency(group_concurrency, "group_concurrency")
        values: dict[str, int] = {}
        if clear:
            values.update(gconc=0, grate_n=0, grate_w=0, rate_n=0, rate_w=0)
        if group_concurrency is not None:
            values["gconc"] = group_concurrency
        if group_rate is not None:
            values.update(grate_n=group_rate.limit, grate_w=group_rate.window_ms)
        if rate is not None:
            values.update(rate_n=rate.limit, rate_w=rate.window_ms)
        if values:
            engine = await self.app.engine()
            await engine.configure(self.name, **values)
            await engine.refresh_groups(self.name)  # raised limits take effect at once

    def group(self, name: str) -> Group:
        return Group(self, check_group(name))

    async def groups(self, *, limit: int = 1000) -> list[GroupState]:
        """Groups with waiting or running jobs (or settings), at most ``limit``, by name."""
        engine = await self._existing()
        names: list[str] = []
        cursor = 0
        while True:
            cursor, page = await engine.scan_groups(self.name, cursor, 500)
            names.extend(page)
            if cursor == 0 or len(names) >= limit:
                break
        names = sorted(set(names))[:limit]
        return [group_state(raw) for raw in await engine.group_states(self.name, names)]

    # -- jobs ----------------------------------------------------------------------------------

    async def _ops(self) -> Ops:
        return Ops(await self._existing())

    @property
    def dead_letters(self) -> DeadLetters:
        from corral.dead_letters import DeadLetters

        return DeadLetters(self)

    async def jobs(
        self, state: str, *, offset: int = 0, limit: int = 50, newest_first: bool = True
    ) -> list[JobSummary]:
        """One page of jobs in a state (waiting, delayed, active, completed, dead)."""
        if state not in LISTABLE:
            raise ConfigError(f"state must be one of {', '.join(LISTABLE)}, got {state!r}")
        ops = await self._ops()
        ids = await ops.list_ids(self.name, state, offset, limit, newest_first)
        return [JobSummary.from_fields(r) for r in await ops.summaries(self.name, ids)]

    async def get(self, job_id: str) -> JobInfo:
        """Everything about one job: payload, options, state, attempts, errors, progress, ..."""
        await self._existing()
        return await self.app.get_job(self.name, job_id)

    async def logs(self, job_id: str) -> list[str]:
        return await (await self._existing()).job_logs(self.name, job_id)

    async def find(
        self,
        where: JobFilter,
        *,
        states: tuple[str, ...] = LISTABLE,
        limit: int = 50,
        offset: int = 0,
    ) -> list[JobSummary]:
        """Jobs matching ``where`` in the given states (a scan in bounded batches), paged."""
        ops = await self._ops()
        found: list[JobSummary] = []
        skipped = 0
        for state in states:
            async for batch in ops.scan_state(self.name, state):
                for raw in batch:
                    job = JobSummary.from_fields(raw)
                    if not where.matches(job):
                        continue
                    if skipped < offset:
                        skipped += 1
                        continue
                    found.append(job)
                    if len(found) >= limit:
                        return found
        return found

    async def drain(self, *, progress: Progress | None = None) -> int:
        """Delete every waiting and delayed job (running jobs finish); returns how many."""
        ops = await self._ops()
        total = 0
        while True:
            removed, remaining = await ops.drain_step(self.name)
            total += removed
            if progress:
                progress(total, total + remaining)
            if removed == 0 or remaining == 0:
                return total

    async def clean(
        self, state: str, older_than: timedelta, *, progress: Progress | None = None
    ) -> int:
        """Delete completed or dead jobs that finished more than ``older_than`` ago, a bounded
        batch per Redis call; returns how many."""
        if state not in ("completed", "dead"):
            raise ConfigError(f"clean works on completed or dead jobs, got {state!r}")
        ops = await self._ops()
        cutoff = int(time.time() * 1000) - to_ms(older_than)
        total, start = 0, 0
        while start >= 0:
            removed, start = await ops.clean_step(self.name, state, cutoff, start)
            total += removed
            if progress:
                progress(total, 0)
        return total

    async def obliterate(self, *, force: bool = False) -> int:
        """Delete the queue and every job in it. Refused while jobs run, unless ``force``."""
        counts = await self.counts()
        if counts.active and not force:
            raise ConfigError(
                f"queue {self.name!r} has {counts.active} running job(s); stop its workers or "
                "pass force=True"
            )
        ops = await self._ops()
        total = 0
        while True:
            n = await ops.obliterate_step(self.name)
            total += n
            if n == 0:
                return total

    def _missing(self, job_id: str) -> JobNotFound:
        return JobNotFound(f"no job {job_id} in queue {self.name!r}")

    async def promote(self, job_id: str) -> bool:
        """Run a delayed job now; False if it is not delayed. JobNotFound for an unknown id."""
        code = await (await self._ops()).promote(self.name, job_id)
        if code < 0:
            raise self._missing(job_id)
        return code == 1

    async def retry(self, job_id: str, *, by: str | None = None) -> bool:
        """Run a dead (failed or cancelled) job again now, with fresh attempts; False if it is
        not dead. JobNotFound for an unknown id."""
        ops = await self._ops()
        if await ops.replay(self.name, [job_id], by or operator()) == 1:
            return True
        if not await ops.job_exists(self.name, job_id):
            raise self._missing(job_id)
        return False

    async def remove(self, job_id: str) -> None:
        """Delete a job that is not running. JobNotFound for an unknown id; a running job is
        refused (cancel it instead)."""
        code = await (await self._ops()).remove(self.name, job_id)
        if code == -2:
            raise ConfigError(f"job {job_id} is running: cancel it instead")
        if code != 1:
            raise self._missing(job_id)

    async def set_priority(self, job_id: str, priority: int) -> bool:
        """Change the priority of a waiting or delayed job; False if it is in another state.
        JobNotFound for an unknown id."""
        if not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise ConfigError(f"priority must be an integer {PRIORITY_MIN}..{PRIORITY_MAX}")
        code = await (await self._ops()).reprioritize(self.name, job_id, priority)
        if code < 0:
            raise self._missing(job_id)
        return code == 1

    async def cancel(self, job_id: str, *, reason: str = "", by: str | None = None) -> str:
        """Cancel a job from any process. Returns ``cancelled`` (it was waiting or delayed),
        ``signalled`` (its worker stops it within a second), or ``ended`` (nothing to do).
        Raises JobNotFound for an unknown id."""
        code = await (await self._ops()).cancel(self.name, job_id, by or operator(), reason)
        if code == -1:
            raise self._missing(job_id)
        return {1: "cancelled", 2: "signalled"}.get(code, "ended")

    async def cancel_where(
        self, where: JobFilter, *, reason: str = "", by: str | None = None
    ) -> int:
        """Cancel every waiting, delayed or running job matching ``where`` (e.g. a group or a
        job name); returns how many were cancelled or signalled."""
        if where.empty:
            raise ConfigError("cancel_where needs a filter (use drain to drop everything)")
        ops = await self._ops()
        who = by or operator()
        n = 0
        for state in ("waiting", "delayed", "active"):
            ids: list[str] = []
            async for batch in ops.scan_state(self.name, state):
                ids += [r["id"] for r in batch if where.matches(JobSummary.from_fields(r))]
            for job_id in ids:
                n += await ops.cancel(self.name, job_id, who, reason) in (1, 2)
        return n
