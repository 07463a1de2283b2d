"""``corral.__all__`` is exactly the intended public names (as httpx's test_exported_members
does): adding or dropping a public name is a decision made here, not by accident."""

from __future__ import annotations

import corral

PUBLIC = {
    # the app, jobs and handles
    "App", "AsyncJobFunction", "SyncJobFunction", "JobFunction", "PreparedJob", "JobHandle",
    "JobOptions", "Priority", "Settings", "current_job", "JobContext", "run",
    # retries
    "RetryPolicy", "Custom", "Exponential", "Fixed", "Linear",
    # workers
    "Worker", "WorkerStats",
    # operations
    "Queue", "Group", "DeadLetters", "ReplayReport", "RejectedEdit", "JobFilter", "RateLimit",
    # read models
    "JobInfo", "JobEvent", "JobSummary", "JobState", "DeadReason", "ErrorRecord", "QueueCounts",
    "GroupState", "JobOverrides", "Cancellation", "Replay", "WorkerInfo",
    # errors, as drawn in corral/errors.py
    "CorralError", "ConfigError", "PayloadError", "StalePayload", "ConnectionLost",
    "ServerError", "EmbeddedServerError", "QueueNotFound", "QueueFull", "JobNotFound", "JobFailed",
    "ResultTimeout", "LeaseLost", "JobControl", "Fatal", "Retry", "RateLimited", "JobTimeout",
    "__version__",
}  # fmt: skip


def test_all_is_exactly_the_public_names() -> None:
    assert len(corral.__all__) == len(set(corral.__all__))
    assert set(corral.__all__) == PUBLIC


def test_every_public_name_exists_and_says_where_it_lives() -> None:
    for name in corral.__all__:
        value = getattr(corral, name)
        if isinstance(value, type):  # a class's home is a module of the package, not a stray
            assert value.__module__.startswith("corral."), (name, value.__module__)


def test_errors_are_all_public() -> None:
    import corral.errors as errors

    defined = {
        name
        for name, value in vars(errors).items()
        if isinstance(value, type)
        and issubclass(value, Exception)
        and value.__module__ == "corral.errors"
    }
    assert defined <= set(corral.__all__)
