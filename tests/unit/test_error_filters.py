"""Error records carry the exception's class chain; filters match a class and its subclasses,
and a substring of the message (issue 13.2). Pure: no server."""

from __future__ import annotations

import json

import pytest

from corral import JobFilter, JobSummary
from corral.engine.schema import LAST_ERROR, STATE, SUMMARY_FIELDS, decode_summary, encode_error
from corral.errors import JobTimeout
from corral.worker.decisions import error_record, error_types


class UpstreamError(ConnectionError):
    """A user's own error class, outside builtins and corral."""


def summary(record: dict[str, object] | None) -> JobSummary:
    row: list[str | None] = [None] * len(SUMMARY_FIELDS)
    row[SUMMARY_FIELDS.index(STATE)] = "dead"
    if record is not None:
        row[SUMMARY_FIELDS.index(LAST_ERROR)] = json.dumps(record)
    job = decode_summary("j1", row)
    assert job is not None
    return job


def exception_json(exc: BaseException) -> str:
    """The error record the worker stores for ``exc``."""
    return encode_error(error_record(exc, attempt=1, worker="w"))


def test_the_chain_names_builtins_and_corral_plainly_and_others_qualified() -> None:
    assert error_types(JobTimeout("too slow")) == (
        "JobTimeout",
        "JobControl",
        "CorralError",
        "TimeoutError",
        "OSError",
    )
    assert error_types(UpstreamError("429")) == (
        f"{__name__}.UpstreamError",
        "ConnectionError",
        "OSError",
    )
    assert error_types(Exception("bare")) == ("Exception",)  # never empty
    assert error_types(KeyboardInterrupt()) == ("KeyboardInterrupt",)


def test_the_worker_records_the_chain() -> None:
    record = json.loads(exception_json(JobTimeout("x")))
    assert record["type"] == "JobTimeout"
    assert record["mro"][-2:] == ["TimeoutError", "OSError"]


@pytest.mark.parametrize(
    ("wanted", "matches"),
    [
        ("TimeoutError", True),  # the docs' example: Corral's JobTimeout is one
        ("OSError", True),
        ("JobTimeout", True),
        ("CorralError", True),
        ("ConnectionError", False),
        ("Exception", False),  # shared by every error: not recorded, so never matched
    ],
)
def test_a_type_filter_matches_subclasses(wanted: str, matches: bool) -> None:
    job = summary(json.loads(exception_json(JobTimeout("x"))))
    assert JobFilter(error_type=wanted).matches(job) is matches


def test_qualified_and_bare_names_both_match() -> None:
    job = summary(json.loads(exception_json(UpstreamError("x"))))
    assert JobFilter(error_type="UpstreamError").matches(job)
    assert JobFilter(error_type=f"{__name__}.UpstreamError").matches(job)
    assert JobFilter(error_type="ConnectionError").matches(job)
    assert not JobFilter(error_type="other.UpstreamError").matches(job)


def test_records_without_a_chain_match_on_their_type() -> None:
    """Written before the chain was recorded, or not an exception at all (UnknownJob)."""
    old = summary({"type": "httpx.ReadTimeout", "message": "read timed out"})
    assert old.error_types == ("httpx.ReadTimeout",)
    assert JobFilter(error_type="ReadTimeout").matches(old)
    assert JobFilter(error_type="httpx.ReadTimeout").matches(old)
    assert not JobFilter(error_type="TimeoutError").matches(old)  # its bases are unknown
    assert not JobFilter(error_type="TimeoutError").matches(summary(None))


def test_message_filter_is_a_case_insensitive_substring() -> None:
    job = summary({"type": "UpstreamError", "message": "HTTP 429 Too Many Requests"})
    assert JobFilter(error_message="429").matches(job)
    assert JobFilter(error_message="too many").matches(job)
    assert not JobFilter(error_message="503").matches(job)
    assert not JobFilter(error_message="429").matches(summary(None))
    assert JobFilter(error_type="UpstreamError", error_message="429").matches(job)
    assert not JobFilter(error_type="ValueError", error_message="429").matches(job)
