import random
from datetime import timedelta

import pytest

from corral import ConfigError, Custom, Exponential, Fixed, Linear, RetryPolicy
from corral.engine.schema import decode_backoff, encode_backoff
from corral.retry import apply_jitter

S = timedelta(seconds=1)


def ms(t: timedelta) -> int:
    return int(t.total_seconds() * 1000)


def test_fixed_linear_exponential_curves() -> None:
    assert [ms(Fixed(S).delay(a)) for a in (1, 2, 5)] == [1000, 1000, 1000]
    assert [ms(Linear(S, cap=timedelta(seconds=3)).delay(a)) for a in (1, 2, 3, 9)] == [
        1000,
        2000,
        3000,
        3000,
    ]
    exp = Exponential(S, factor=2, cap=timedelta(seconds=10))
    assert [ms(exp.delay(a)) for a in (1, 2, 3, 4, 5, 50)] == [1000, 2000, 4000, 8000, 10000, 10000]


def test_custom_gets_attempt_and_error() -> None:
    seen: list[tuple[int, str]] = []

    def curve(attempt: int, error: BaseException | None) -> timedelta:
        seen.append((attempt, type(error).__name__))
        return timedelta(milliseconds=100 * attempt)

    assert ms(Custom(curve).delay(3, KeyError("x"))) == 300
    assert seen == [(3, "KeyError")]


def test_custom_must_return_timedelta() -> None:
    with pytest.raises(ConfigError, match="timedelta"):
        Custom(lambda a, e: 5).delay(1)  # type: ignore[arg-type,return-value]


def test_jitter_stays_within_bounds_and_varies() -> None:
    rng = random.Random(7)
    values = {apply_jitter(1000, 0.2, rng) for _ in range(200)}
    assert min(values) >= 800 and max(values) <= 1200
    assert len(values) > 50
    assert apply_jitter(1000, 0.0) == 1000


@pytest.mark.parametrize(
    "make",
    [
        lambda: Fixed(timedelta(seconds=-1)),
        lambda: Exponential(S, factor=0.5),
        lambda: Linear(S, jitter=1.5),
        lambda: RetryPolicy(attempts=0),
        lambda: RetryPolicy(backoff="fast"),  # type: ignore[arg-type]
    ],
)
def test_invalid_policies_refused(make: object) -> None:
    with pytest.raises(ConfigError):
        make()  # type: ignore[operator]


def test_specs_round_trip() -> None:
    for backoff in (Fixed(S, 0.1), Linear(S, S * 5, 0.2), Exponential(S, 3.0, S * 60, 0.3)):
        assert decode_backoff(encode_backoff(backoff)) == backoff
    assert decode_backoff(encode_backoff(Custom(lambda a, e: S))) is None


def test_should_retry_counts_attempts() -> None:
    policy = RetryPolicy(attempts=3)
    assert [policy.should_retry(a) for a in (1, 2, 3)] == [True, True, False]
