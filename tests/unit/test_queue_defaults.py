"""Queue-level default job options (issue 13): ``app.queue_defaults(queue, ...)`` applies to the
jobs registered on that queue, option by option under the job's own; declared before them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from corral import App, ConfigError, Exponential, Fixed, Priority, RetryPolicy

CRITICAL = RetryPolicy(attempts=5, backoff=Exponential(timedelta(seconds=1)))


def make() -> App:
    return App.from_url("redis://127.0.0.1:1/0")


def test_defaults_apply_to_the_queues_jobs_under_their_own_options() -> None:
    app = make()
    app.queue_defaults(
        "critical", priority=Priority.CRITICAL, retry=CRITICAL, timeout=timedelta(seconds=30)
    )

    @app.job(queue="critical")
    async def page(message: str) -> None: ...

    @app.job(queue="critical", timeout=timedelta(seconds=5), priority=Priority.HIGH)
    async def notify(message: str) -> None: ...

    @app.job(queue="low")
    async def cleanup() -> None: ...

    assert page.options.priority == Priority.CRITICAL
    assert page.options.retry == CRITICAL
    assert page.definition.timeout_s == 30
    assert notify.options.priority == Priority.HIGH  # the job's own option wins...
    assert notify.definition.timeout_s == 5
    assert notify.options.retry == CRITICAL  # ...option by option
    assert cleanup.options.retry == RetryPolicy()  # other queues: untouched
    assert cleanup.definition.timeout_s is None
    # the spec every enqueue sends: the queue's attempts and priority, and no per-job
    # overrides (the definition holds the backoff and timeout the worker applies)
    spec = page.prepare("x").new.spec
    assert (spec.priority, spec.max_attempts, spec.overrides) == (0, 5, None)


def test_a_jobs_retry_policy_replaces_the_queues_whole() -> None:
    app = make()
    app.queue_defaults("q", retry=RetryPolicy(attempts=5, fatal_on=(ValueError,)))

    @app.job(queue="q", retry=RetryPolicy(attempts=2, backoff=Fixed(timedelta(seconds=1))))
    async def job() -> None: ...

    assert job.options.retry.attempts == 2
    assert job.options.retry.fatal_on == ()


def test_declared_after_a_job_of_the_queue_is_refused_by_name() -> None:
    app = make()

    @app.job(queue="recipes")
    async def execute_recipe() -> None: ...

    with pytest.raises(ConfigError, match=r"before registering its jobs .*execute_recipe"):
        app.queue_defaults("recipes", retry=CRITICAL)
    app.queue_defaults("other", retry=CRITICAL)  # another queue is fine
    with pytest.raises(ConfigError, match="declared already"):
        app.queue_defaults("other", timeout=timedelta(seconds=1))


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"priority": 5000}, "priority"),
        ({"timeout": timedelta(0)}, "timeout"),
        ({"max_stalls": -1}, "max_stalls"),
    ],
)
def test_bad_defaults_are_refused_when_declared(kwargs: dict[str, object], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        make().queue_defaults("q", **kwargs)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="queue name"):
        make().queue_defaults("no spaces", timeout=timedelta(seconds=1))
