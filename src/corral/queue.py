"""Queue handle: counts, pause/resume, limits, and the operator's tools for one queue:
listing and finding jobs, drain, clean, obliterate, cancel, promote, retry, remove."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import timedelta

from corral.dead_letters import DeadLetters
from corral.engine.outcomes import Cancelled, Promoted, Removed, Reprioritized
from corral.errors import ConfigError
from corral.filters import JobFilter
from corral.group_handle import Group
from corral.groups import RateLimit, check_concurrency
from corral.handle import cancel_job, get_job, operator, retry_job
from corral.models import GroupState, JobInfo, QueueCounts
from corral.options import PRIORITY_MAX, PRIORITY_MIN, check_group
from corral.scope import QueueScope
from corral.timing import to_ms

__all__ = ["Group", "Queue"]

Progress = Callable[[int, int], None]
"""``progress(done, total)``: called by long operations after each bounded step."""


class Queue(QueueScope):
    """Operations on one queue by name; needs no job code, so ops tools can use it."""

    async def counts(self) -> QueueCounts:
        return await (await self._existing()).counts(self.name)

    async def pause(self) -> None:
        """Workers stop claiming from this queue; running jobs finish."""
        await (await self._existing()).set_paused(self.name, True)

    async def resume(self) -> None:
        await (await self._existing()).set_paused(self.name, False)

    async def wait_idle(
        self,
        *,
        timeout: timedelta | None = None,
        poll: timedelta = timedelta(milliseconds=500),
        on_poll: Callable[[QueueCounts], None] | None = None,
    ) -> bool:
        """Wait until no job of this queue is running: after ``pause()``, the moment the
        running ones have finished (or been handed back by their workers). True once idle,
        False when ``timeout`` ran out first; ``on_poll`` sees the counts at every look."""
        engine = await self._existing()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout.total_seconds()
        while True:
            counts = await engine.counts(self.name)
            if on_poll is not None:
                on_poll(counts)
            if counts.active == 0:
                return True
            pause = poll.total_seconds()
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return False
                pause = min(pause, left)
            await asyncio.sleep(pause)

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
            await (await self.client.engine()).configure(self.name, **limits)

    async def set_max_jobs(self, max_jobs: int | None) -> None:
        """Cap this queue's waiting and delayed jobs: an enqueue that would take them past
        ``max_jobs`` is refused, all of it, with :class:`~corral.errors.QueueFull` (running
        jobs do not count; retries, replays and reschedules of jobs already in the queue are
        never refused). ``None`` or 0 removes the cap."""
        if max_jobs is not None and (
            not isinstance(max_jobs, int) or isinstance(max_jobs, bool) or max_jobs < 0
        ):
            raise ConfigError(f"max_jobs must be a whole number, 0 or more, got {max_jobs!r}")
        await (await self.client.engine()).set_max_jobs(self.name, max_jobs or None)

    async def max_jobs(self) -> int | None:
        """The cap on waiting + delayed jobs (``set_max_jobs``), or None."""
        return await (await self._existing()).max_jobs(self.name)

    async def set_events(self, enabled: bool) -> None:
        """Record every transition of this queue in its capped events stream (``events`` key,
        ~10,000 entries) for consumers such as a history sink. Off by default: each entry
        costs about as much Redis time as the transition itself."""
        await (await self.client.engine()).configure(self.name, ev=1 if enabled else 0)

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
            engine = await self.client.engine()
            await engine.configure(self.name, **values)
            cursor = 0  # raised limits take effect at once: groups now under them are served
            while True:
                cursor, names = await engine.scan_groups(self.name, cursor, 500)
                await engine.refresh_groups(self.name, names)
                if cursor == 0:
                    break

    def group(self, name: str) -> Group:
        return Group(self, check_group(name))

    async def groups(self, *, limit: int = 1000) -> list[GroupState]:
        """Groups with waiting or running jobs, paused ones and those with settings of their
        own, at most ``limit``, by name."""
        engine = await self._existing()
        names = (await engine.group_names(self.name))[:limit]
        return await engine.group_states(self.name, names)

    # -- jobs ----------------------------------------------------------------------------------

    @property
    def dead_letters(self) -> DeadLetters:
        return DeadLetters(self)

    async def get(self, job_id: str) -> JobInfo:
        """Everything about one job: payload, options, state, attempts, errors, progress, ..."""
        await self._existing()
        return await get_job(self.client, self.name, job_id)

    async def logs(self, job_id: str) -> list[str]:
        return await (await self._existing()).job_logs(self.name, job_id)

    async def drain(self, *, progress: Progress | None = None) -> int:
        """Delete every waiting and delayed job (running jobs finish); returns how many."""
        engine = await self._existing()
        total = 0
        while True:
            removed, remaining = await engine.drain_step(self.name)
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
        engine = await self._existing()
        cutoff = int(time.time() * 1000) - to_ms(older_than)
        total, start = 0, 0
        while start >= 0:
            removed, start = await engine.clean_step(self.name, state, cutoff, start)
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
        engine = await self._existing()
        total = 0
        while True:
            n = await engine.obliterate_step(self.name)
            total += n
            if n == 0:
                return total

    async def promote(self, job_id: str) -> bool:
        """Run a delayed job now; False if it is not delayed. JobNotFound for an unknown id."""
        outcome = await (await self._existing()).promote(self.name, job_id)
        if outcome is Promoted.NO_JOB:
            raise self._missing(job_id)
        return outcome is Promoted.PROMOTED

    async def retry(self, job_id: str, *, by: str | None = None) -> bool:
        """Run a dead (failed or cancelled) job again now, with fresh attempts; False if it is
        not dead. JobNotFound for an unknown id. (``JobHandle.retry`` does the same.)"""
        return await retry_job(self.client, self.name, job_id, by=by)

    async def remove(self, job_id: str) -> None:
        """Delete a job that is not running. JobNotFound for an unknown id; a running job is
        refused (cancel it instead)."""
        outcome = await (await self._existing()).remove(self.name, job_id)
        if outcome is Removed.RUNNING:
            raise ConfigError(f"job {job_id} is running: cancel it instead")
        if outcome is Removed.NO_JOB:
            raise self._missing(job_id)

    async def set_priority(self, job_id: str, priority: int) -> bool:
        """Change the priority of a waiting or delayed job; False if it is in another state.
        JobNotFound for an unknown id."""
        if not isinstance(priority, int) or not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise ConfigError(f"priority must be an integer {PRIORITY_MIN}..{PRIORITY_MAX}")
        outcome = await (await self._existing()).reprioritize(self.name, job_id, priority)
        if outcome is Reprioritized.NO_JOB:
            raise self._missing(job_id)
        return outcome is Reprioritized.CHANGED

    async def cancel(self, job_id: str, *, reason: str = "", by: str | None = None) -> str:
        """Cancel a job from any process. Returns ``cancelled`` (it was waiting or delayed),
        ``signalled`` (its worker stops it within a second), or ``ended`` (nothing to do).
        Raises JobNotFound for an unknown id. (``JobHandle.cancel`` does the same.)"""
        return await cancel_job(self.client, self.name, job_id, reason=reason, by=by)

    async def cancel_where(
        self, where: JobFilter, *, reason: str = "", by: str | None = None
    ) -> int:
        """Cancel every waiting, delayed or running job matching ``where`` (e.g. a group or a
        job name); returns how many were cancelled or signalled."""
        if where.empty:
            raise ConfigError("cancel_where needs a filter (use drain to drop everything)")
        engine = await self._existing()
        who = by or operator()
        n = 0
        for job_id in await self.matching_ids(where, ("waiting", "delayed", "active")):
            outcome = await engine.cancel(self.name, job_id, who, reason)
            n += outcome in (Cancelled.CANCELLED, Cancelled.SIGNALLED)
        return n
