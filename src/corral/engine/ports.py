"""What the layers above need of the engine, as protocols: the seam where a test puts an
in-memory fake (``tests/unit/fake_engine.py``) in place of Redis. ``Engine`` satisfies each of
them (mypy checks it wherever one is passed in its place)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from corral.engine.outcomes import Deferred, Failed, Rescheduled
from corral.engine.wire import ClaimResult, Reaped
from corral.models import Cancellation, ErrorRecord, QueueCounts, WorkerInfo


class WorkerEngine(Protocol):
    """Everything a worker does with Redis."""

    where: str

    async def ping(self) -> None: ...

    async def eviction_policy(self) -> str | None: ...

    async def counts(self, queue: str) -> QueueCounts: ...

    async def complete_and_claim(
        self,
        queue: str,
        done: Sequence[tuple[str, str, str]],
        n: int,
        worker: str,
        lease_ms: int,
    ) -> tuple[list[bool], ClaimResult | None]: ...

    async def complete(self, queue: str, done: Sequence[tuple[str, str, str]]) -> list[bool]: ...

    async def fail(
        self,
        queue: str,
        job_id: str,
        token: str,
        error: ErrorRecord,
        *,
        retry_delay_ms: int | None,
        reason: str = "",
    ) -> Failed: ...

    async def reschedule(
        self, queue: str, job_id: str, token: str, delay_ms: int, message: str, hold_ms: int = 0
    ) -> Rescheduled: ...

    async def defer(
        self,
        queue: str,
        job_id: str,
        token: str,
        delay_ms: int,
        grace_ms: int,
        error: ErrorRecord,
    ) -> Deferred: ...

    async def release(self, queue: str, items: Sequence[tuple[str, str]]) -> int: ...

    async def heartbeat(
        self, queue: str, lease_ms: int, items: Sequence[tuple[str, str]]
    ) -> tuple[list[str], list[str]]: ...

    async def reap(self, queue: str, limit: int = 500, reaper: str = "") -> Reaped: ...

    async def touch(
        self,
        queue: str,
        job_id: str,
        token: str,
        *,
        progress_json: str = "",
        log_line: str = "",
        max_log_lines: int = 1000,
    ) -> bool: ...

    async def register_worker(self, info: WorkerInfo) -> None: ...

    async def unregister_worker(self, worker_id: str) -> None: ...

    async def wait_marker(self, queue: str, timeout_s: float) -> bool: ...

    async def signal(self, queue: str) -> None: ...

    async def cancellation(self, queue: str, job_id: str) -> Cancellation | None: ...

    def cancel_signals(self, queues: Sequence[str]) -> AsyncIterator[tuple[str, str]]: ...
