"""Corral: Redis-backed background jobs for Python.

Typed jobs (``@app.job``), validated payloads, retries with backoff, leases with fencing
tokens, fair multi-tenant groups, and a dead-letter set you can inspect and replay.
"""

from corral.app import App
from corral.context import JobContext, current_job
from corral.dead_letters import DeadLetters, RejectedEdit, ReplayReport
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
    QueueNotFound,
    RateLimited,
    ResultTimeout,
    Retry,
    ServerError,
)
from corral.filters import JobFilter, JobSummary
from corral.groups import GroupState, RateLimit
from corral.job import DeadReason, ErrorRecord, JobInfo, JobOptions, JobState, Priority
from corral.jobs import JobFunction, JobHandle, PreparedJob
from corral.queue import Group, Queue, QueueCounts
from corral.retry import Custom, Exponential, Fixed, Linear, RetryPolicy
from corral.settings import Settings
from corral.worker import Worker, WorkerStats

__version__ = "0.1.0"

__all__ = [
    "App",
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
    "QueueNotFound",
    "RateLimit",
    "RateLimited",
    "RejectedEdit",
    "ReplayReport",
    "ResultTimeout",
    "Retry",
    "RetryPolicy",
    "ServerError",
    "Settings",
    "Worker",
    "WorkerStats",
    "__version__",
    "current_job",
]
