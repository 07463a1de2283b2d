"""Process-mode handlers whose errors are classified by their retry policy (the worker sees a
child's exception as text: it matches the recorded class chain by name)."""

from __future__ import annotations

from datetime import timedelta

from corral import App, Fixed, RetryPolicy

app = App(name="corral-test-classified")


class UpstreamDown(ConnectionError):
    pass


@app.job(
    queue="classified",
    mode="process",
    retry=RetryPolicy(
        attempts=3,
        backoff=Fixed(timedelta(milliseconds=20)),
        retry_on=(ConnectionError,),
        fatal_on=(ValueError,),
    ),
)
def call_upstream(kind: str) -> str:
    if kind == "down":
        raise UpstreamDown("upstream unreachable")  # a ConnectionError: retried
    if kind == "bad":
        raise ValueError("invalid input")  # fatal_on
    if kind == "bug":
        raise KeyError("missing")  # not in retry_on
    return "ok"
