"""Declarative retry classification (issue 13): ``retry_on`` / ``fatal_on`` on a RetryPolicy or
``@app.job``, the pure decision in ``worker/decisions.py``, and the worker's outcome against the
in-memory engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest

from corral import App, ConfigError, Fatal, Fixed, JobTimeout, RetryPolicy, Worker
from corral.worker.decisions import classify, decide
from tests.unit.fake_engine import FakeEngine


class TransportError(Exception):
    pass


class ReadTimeout(TransportError):
    pass


FAST = Fixed(timedelta(milliseconds=10))
ONLY_TRANSPORT = RetryPolicy(attempts=3, backoff=FAST, retry_on=(TransportError,))
NEVER_VALUE = RetryPolicy(attempts=3, backoff=FAST, fatal_on=(ValueError,))
CHAIN = "tests.unit.test_retry_classification"


@pytest.mark.parametrize(
    ("policy", "exc", "reason"),
    [
        (ONLY_TRANSPORT, ReadTimeout("slow"), None),  # a subclass of what retry_on names
        (ONLY_TRANSPORT, KeyError("bug"), "not_retryable"),
        (ONLY_TRANSPORT, JobTimeout("late"), "not_retryable"),  # a timeout is an error too
        (NEVER_VALUE, ValueError("bad input"), "fatal"),
        (NEVER_VALUE, UnicodeDecodeError("utf-8", b"", 0, 1, "x"), "fatal"),  # a ValueError
        (NEVER_VALUE, KeyError("transient"), None),
        (RetryPolicy(), KeyError("any"), None),
    ],
)
def test_classify_in_process(policy: RetryPolicy, exc: BaseException, reason: str | None) -> None:
    assert classify(policy, exc, None) == reason


def test_fatal_on_wins_over_retry_on() -> None:
    policy = RetryPolicy(retry_on=(TransportError,), fatal_on=(ReadTimeout,))
    assert classify(policy, ReadTimeout(), None) == "fatal"
    assert classify(policy, TransportError(), None) is None


def test_classify_by_name_for_errors_from_a_child_process() -> None:
    """A process-mode error arrives as text: its recorded class chain is matched by name."""
    chain = (f"{CHAIN}.ReadTimeout", f"{CHAIN}.TransportError")
    assert classify(ONLY_TRANSPORT, RuntimeError("remote"), chain) is None
    assert classify(ONLY_TRANSPORT, RuntimeError("remote"), ("KeyError", "LookupError")) == (
        "not_retryable"
    )
    assert classify(NEVER_VALUE, RuntimeError("remote"), ("ValueError",)) == "fatal"
    # no chain: the child died or never started, the worker's failure: not classified
    assert classify(ONLY_TRANSPORT, RuntimeError("child died"), ()) is None


def test_decide_puts_classification_before_attempts_and_fatal_before_all() -> None:
    first = decide(KeyError("x"), 1, 3, FAST, policy=ONLY_TRANSPORT)
    assert (first.retry_ms, first.reason) == (None, "not_retryable")
    retried = decide(ReadTimeout("x"), 1, 3, FAST, policy=ONLY_TRANSPORT)
    assert (retried.retry_ms, retried.reason) == (10, "")
    spent = decide(ReadTimeout("x"), 3, 3, FAST, policy=ONLY_TRANSPORT)
    assert (spent.retry_ms, spent.reason) == (None, "exhausted")
    fatal = decide(Fatal("stop"), 1, 3, FAST, policy=RetryPolicy(retry_on=(Fatal,)))
    assert fatal.reason == "fatal"


def test_policy_checks_its_classes() -> None:
    assert RetryPolicy(retry_on=TransportError).retry_on == (TransportError,)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="exception classes"):
        RetryPolicy(retry_on=("TransportError",))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="both retry_on and fatal_on"):
        RetryPolicy(retry_on=(ValueError,), fatal_on=(ValueError,))


def test_app_job_classifies_on_top_of_the_policy_that_applies() -> None:
    app = App.from_url("redis://127.0.0.1:1/0")
    app.queue_defaults("q", retry=RetryPolicy(attempts=7, backoff=FAST))

    @app.job(queue="q", retry_on=(TransportError,), fatal_on=[ValueError])
    async def fetch() -> None: ...

    retry = fetch.definition.options.retry
    assert (retry.attempts, retry.backoff, retry.retry_on, retry.fatal_on) == (
        7,
        FAST,
        (TransportError,),
        (ValueError,),
    )
    with pytest.raises(ConfigError, match="retry_on is given twice"):
        app.job(queue="q", retry=ONLY_TRANSPORT, retry_on=(KeyError,))(fetch.fn)


def test_a_per_call_retry_carries_no_classification() -> None:
    app = App.from_url("redis://127.0.0.1:1/0")

    @app.job(retry=ONLY_TRANSPORT)
    async def fetch() -> None: ...

    # attempts and backoff per call: fine, the definition's classification still applies
    more = fetch.with_options(retry=RetryPolicy(attempts=9, backoff=FAST))
    assert more.options.retry.attempts == 9
    same = fetch.with_options(retry=RetryPolicy(attempts=9, retry_on=(TransportError,)))
    assert same.options.retry.attempts == 9
    with pytest.raises(ConfigError, match="belong to the job's definition"):
        fetch.with_options(retry=RetryPolicy(retry_on=(KeyError,)))


@pytest.fixture
async def app() -> AsyncIterator[App]:
    application = App.from_url("redis://127.0.0.1:1/0")  # never reached: the fake answers
    yield application
    await application.close()


@pytest.fixture
async def fake(app: App) -> FakeEngine:
    engine = FakeEngine()
    app.client.use(engine)  # type: ignore[arg-type]
    return engine


async def test_the_worker_records_what_the_definition_decides(app: App, fake: FakeEngine) -> None:
    @app.job(queue="q", retry=ONLY_TRANSPORT, fatal_on=(ValueError,))
    async def call(kind: str) -> None:
        raise {"transport": ReadTimeout, "bug": KeyError, "value": ValueError}[kind](kind)

    jobs = {
        kind: fake.add("q", "call", f'{{"kind": "{kind}"}}')
        for kind in ("transport", "bug", "value")
    }
    stats = await Worker(app, ["q"], burst=True).run()
    outcome = {job_id: (delay, reason) for job_id, _, delay, reason in fake.called("fail")}
    assert outcome[jobs["transport"].id] == (10, "")
    assert outcome[jobs["bug"].id] == (None, "not_retryable")
    assert outcome[jobs["value"].id] == (None, "fatal")
    assert stats.dead_reasons == {"not_retryable": 1, "fatal": 1}
    assert stats.retried == 1
