"""Corral: Redis-backed background jobs for Python.

Typed jobs (``@app.job``), validated payloads, retries with backoff, leases with fencing
tokens, fair multi-tenant groups, and a dead-letter set you can inspect and replay.

The names below are imported on first use (PEP 562): ``import corral`` costs almost nothing,
so the ``corral`` command starts at once and imports only what the command run needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # for type checkers and IDEs; at run time ``__getattr__`` imports lazily
    from corral.app import App
    from corral.context import JobContext, current_job
    from corral.dead_letters import DeadLetters, RejectedEdit, ReplayReport
    from corral.definition import AsyncJobFunction, JobFunction, PreparedJob, SyncJobFunction
    from corral.errors import (
        ConfigError,
        ConnectionLost,
        CorralError,
        EmbeddedServerError,
        Fatal,
        JobControl,
        JobFailed,
        JobNotFound,
        JobTimeout,
        LeaseLost,
        PayloadError,
        QueueFull,
        QueueNotFound,
        RateLimited,
        ResultTimeout,
        Retry,
        ServerError,
        StalePayload,
    )
    from corral.filters import JobFilter
    from corral.group_handle import Group
    from corral.groups import RateLimit
    from corral.handle import JobHandle
    from corral.loop import run
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
        Replay,
        WorkerInfo,
    )
    from corral.options import JobOptions, Priority
    from corral.queue import Queue
    from corral.retry import Custom, Exponential, Fixed, Linear, RetryPolicy
    from corral.settings import Settings
    from corral.worker import Worker, WorkerStats

_HOMES: dict[str, str] = {
    "App": "corral.app",
    "AsyncJobFunction": "corral.definition",
    "Cancellation": "corral.models",
    "ConfigError": "corral.errors",
    "ConnectionLost": "corral.errors",
    "CorralError": "corral.errors",
    "current_job": "corral.context",
    "Custom": "corral.retry",
    "DeadLetters": "corral.dead_letters",
    "DeadReason": "corral.models",
    "EmbeddedServerError": "corral.errors",
    "ErrorRecord": "corral.models",
    "Exponential": "corral.retry",
    "Fatal": "corral.errors",
    "Fixed": "corral.retry",
    "Group": "corral.group_handle",
    "GroupState": "corral.models",
    "JobContext": "corral.context",
    "JobControl": "corral.errors",
    "JobFailed": "corral.errors",
    "JobFilter": "corral.filters",
    "JobFunction": "corral.definition",
    "JobHandle": "corral.handle",
    "JobEvent": "corral.models",
    "JobInfo": "corral.models",
    "JobNotFound": "corral.errors",
    "JobOptions": "corral.options",
    "JobOverrides": "corral.models",
    "JobState": "corral.models",
    "JobSummary": "corral.models",
    "JobTimeout": "corral.errors",
    "LeaseLost": "corral.errors",
    "Linear": "corral.retry",
    "PayloadError": "corral.errors",
    "PreparedJob": "corral.definition",
    "Priority": "corral.options",
    "Queue": "corral.queue",
    "QueueCounts": "corral.models",
    "QueueFull": "corral.errors",
    "QueueNotFound": "corral.errors",
    "RateLimit": "corral.groups",
    "run": "corral.loop",
    "RateLimited": "corral.errors",
    "RejectedEdit": "corral.dead_letters",
    "Replay": "corral.models",
    "ReplayReport": "corral.dead_letters",
    "ResultTimeout": "corral.errors",
    "Retry": "corral.errors",
    "RetryPolicy": "corral.retry",
    "ServerError": "corral.errors",
    "Settings": "corral.settings",
    "StalePayload": "corral.errors",
    "SyncJobFunction": "corral.definition",
    "Worker": "corral.worker",
    "WorkerInfo": "corral.models",
    "WorkerStats": "corral.worker",
}
"""Where each public name lives (``__all__`` is checked against it by the tests)."""


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module 'corral' has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once: later lookups do not come here
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__version__ = "0.1.0"

__all__ = [
    "App",
    "AsyncJobFunction",
    "Cancellation",
    "ConfigError",
    "ConnectionLost",
    "CorralError",
    "Custom",
    "DeadLetters",
    "DeadReason",
    "EmbeddedServerError",
    "ErrorRecord",
    "Exponential",
    "Fatal",
    "Fixed",
    "Group",
    "GroupState",
    "JobContext",
    "JobControl",
    "JobEvent",
    "JobFailed",
    "JobFilter",
    "JobFunction",
    "JobHandle",
    "JobInfo",
    "JobNotFound",
    "JobOptions",
    "JobOverrides",
    "JobState",
    "JobSummary",
    "JobTimeout",
    "LeaseLost",
    "Linear",
    "PayloadError",
    "PreparedJob",
    "Priority",
    "Queue",
    "QueueCounts",
    "QueueFull",
    "QueueNotFound",
    "RateLimit",
    "RateLimited",
    "RejectedEdit",
    "Replay",
    "ReplayReport",
    "ResultTimeout",
    "Retry",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "StalePayload",
    "SyncJobFunction",
    "Worker",
    "WorkerInfo",
    "WorkerStats",
    "__version__",
    "current_job",
    "run",
]
