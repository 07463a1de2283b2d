"""Corral: Redis-backed background jobs for Python.

Typed jobs (``@app.job``), validated payloads, retries with backoff, leases with fencing
tokens, fair multi-tenant groups, and a dead-letter set you can inspect and replay.
"""

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
from corral.models import (
    Cancellation,
    DeadReason,
    ErrorRecord,
    GroupState,
    JobInfo,
    JobOverrides,
    JobState,
    JobSummary,
    QueueCounts,
    Replay,
)
from corral.options import JobOptions, Priority
from corral.queue import Queue
from corral.retry import Custom, Exponential, Fixed, Linear, RetryPolicy
from corral.settings import Settings
from corral.worker import Worker, WorkerStats

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
    "WorkerStats",
    "__version__",
    "current_job",
]
