"""Keeping the leases of running jobs: heartbeats that extend them (and notice the ones lost)
and keep this worker's entry in the registry of live workers, the reaper that recovers other
workers' expired leases, and cancellations asked from anywhere (a pub/sub message, repeated by
the heartbeat for a message missed)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import timedelta

from corral.engine.ports import WorkerEngine
from corral.errors import CorralError
from corral.models import JobEvent
from corral.worker.presence import Presence
from corral.worker.running import Running

log = logging.getLogger(__name__)


def heartbeat_interval(lease: timedelta) -> timedelta:
    """A third of the lease: a job's lease survives two missed heartbeats."""
    return max(lease / 3, timedelta(milliseconds=50))


class Leases:
    """The lease keeper of one worker, over the jobs it is running."""

    def __init__(
        self,
        queues: Sequence[str],
        running: Mapping[str, Running],
        lease: timedelta,
        reap_interval: timedelta,
        on_recovered: Callable[[], None],
        presence: Presence,
        worker_id: str = "",
    ) -> None:
        self.queues = list(queues)
        self.worker_id = worker_id
        self.observe: Callable[[JobEvent], None] | None = None  # the App's hooks, if any
        self._running = running
        self.lease_ms = int(lease.total_seconds() * 1000)
        self._heartbeat_s = heartbeat_interval(lease).total_seconds()
        self._presence = presence
        self._reap_s = min(reap_interval.total_seconds(), lease.total_seconds())
        self._on_recovered = on_recovered

    def start(self, engine: WorkerEngine) -> list[asyncio.Task[None]]:
        return [
            asyncio.create_task(self._heartbeats(engine), name="corral-heartbeat"),
            asyncio.create_task(self._reaper(engine), name="corral-reaper"),
            asyncio.create_task(self._cancellations(engine), name="corral-cancel"),
        ]

    def cancel(self, job_id: str) -> None:
        """Stop a running handler whose job was cancelled from elsewhere: the asyncio task is
        cancelled, a thread-mode handler sees ``current_job().cancelled`` (its result is
        discarded), a process-mode child is killed."""
        run = self._running.get(job_id)
        if run is None or run.cancel_requested:
            return
        log.info("job %s: cancelled by request", job_id)
        run.cancel_requested = True
        run.stop()

    async def _heartbeats(self, engine: WorkerEngine) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            by_queue: dict[str, list[tuple[str, str]]] = {}
            for run in list(self._running.values()):
                by_queue.setdefault(run.queue, []).append((run.job.id, run.job.token))
            for queue, items in by_queue.items():
                try:
                    lost, cancel = await engine.heartbeat(queue, self.lease_ms, items)
                except CorralError as exc:
                    log.warning("heartbeat failed: %s", exc)
                    continue
                for job_id in cancel:  # a missed pub/sub message is caught up here
                    self.cancel(job_id)
                sent = dict(items)
                for job_id in lost:
                    holder = self._running.get(job_id)
                    # the same token: a job retried and claimed again while this heartbeat
                    # was in flight is a new attempt, whose lease is not lost
                    if holder is not None and holder.job.token == sent.get(job_id):
                        log.warning("job %s: lease lost; cancelling this attempt", job_id)
                        holder.stop()
            await self._presence.beat(engine)

    async def _reaper(self, engine: WorkerEngine) -> None:
        while True:
            for queue in self.queues:
                try:
                    reaped = await engine.reap(queue, reaper=self.worker_id)
                except CorralError as exc:
                    log.warning("reaper failed: %s", exc)
                    continue
                if reaped.requeued or reaped.dead:
                    log.warning(
                        "queue %s: recovered %d stalled job(s), %d dead",
                        queue,
                        reaped.requeued,
                        reaped.dead,
                    )
                    self._on_recovered()
                if self.observe is not None:  # on_dead hooks hear of stalled deaths here
                    for event in reaped.deaths:
                        self.observe(event)
            await asyncio.sleep(self._reap_s)

    async def _cancellations(self, engine: WorkerEngine) -> None:
        while True:
            try:
                async for _queue, job_id in engine.cancel_signals(self.queues):
                    self.cancel(job_id)
            except CorralError as exc:
                log.warning("cancel channel: %s; resubscribing", exc)
                await asyncio.sleep(1.0)
