"""The script loader: _lib.lua prepended, EVALSHA with NOSCRIPT fallback, Lua error codes mapped."""

from __future__ import annotations

import hashlib

import pytest
import redis
from redis.exceptions import ResponseError

from corral.engine import Engine
from corral.engine.errors import translate
from corral.engine.keys import QueueKeys
from corral.engine.scripts import SCRIPT_NAMES, ScriptRunner, link, load_scripts
from corral.engine.wire import enqueue_args
from corral.errors import PayloadError, ServerError

from .helpers import Q, add, claim, claim_one, new_job, queue_keys


def test_every_script_is_loaded_with_the_library_prepended() -> None:
    scripts = load_scripts()
    assert set(scripts) == set(SCRIPT_NAMES)
    lib_marker = "local function now_ms()"
    for name, script in scripts.items():
        assert script.name == name
        body = script.source.index(f"-- ==== {name}.lua ====")
        if "now_ms(" in script.source[body:]:
            assert 0 <= script.source.index(lib_marker) < body
        assert script.sha == hashlib.sha1(script.source.encode()).hexdigest()
    assert len({s.sha for s in scripts.values()}) == len(scripts)
    assert lib_marker not in scripts["watch"].source  # watch.lua uses no helper


def test_link_keeps_what_is_reached_in_library_order() -> None:
    lib = "\n".join(
        [
            "-- header",
            "local LIMIT = 5",
            "local function a() return LIMIT end",
            "local function b() return 1 end",
            "local function c() return a() end",
            "local function d()",
            "  return b()",
            "end",
        ]
    )
    assert link(lib, "return c() + d()") == lib  # every piece is reached
    assert link(lib, "return a()").splitlines() == [
        "-- header",
        "local LIMIT = 5",
        "local function a() return LIMIT end",
    ]
    assert link(lib, "return 1") == "-- header"


def test_translate_maps_codes_and_wraps_the_rest() -> None:
    mapped = translate(ResponseError("ERR_BAD_JOB empty id or name"))
    assert isinstance(mapped, PayloadError)
    assert str(mapped) == "empty id or name"
    other = translate(ResponseError("OOM command not allowed when used memory > 'maxmemory'"))
    assert isinstance(other, ServerError)  # still inside our exception tree
    assert "OOM command not allowed" in str(other)


async def test_scripts_are_cached_by_sha_after_first_use(engine: Engine, raw: redis.Redis) -> None:
    raw.script_flush()
    await add(engine, new_job("a"))
    sha = engine.runner.scripts["enqueue"].sha
    assert raw.script_exists(sha) == [True]


async def test_single_call_falls_back_after_script_flush(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"))  # every script used below is cached first
    job = await claim_one(engine)
    raw.script_flush()
    assert raw.script_exists(engine.runner.scripts["complete"].sha) == [False]

    assert await engine.complete(Q, [(job.id, job.token, "1")]) == [True]
    assert raw.hget(keys.job("a"), "st") == "completed"
    raw.script_flush()
    assert await add(engine, new_job("b")) == [True]
    assert (await engine.counts(Q)).waiting == 1


async def test_pipeline_falls_back_after_script_flush(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    await add(engine, new_job("a"), new_job("b"), new_job("c"))
    a = await claim_one(engine)
    raw.script_flush()

    flags, result = await engine.complete_and_claim(Q, [(a.id, a.token, "1")], 2, "w1", 30_000)
    assert flags == [True]
    assert result is not None
    assert [j.id for j in result.jobs] == ["b", "c"]
    assert raw.hget(keys.job("a"), "st") == "completed"
    counts = await engine.counts(Q)
    assert (counts.completed, counts.active, counts.waiting) == (1, 2, 0)
    # the re-sent commands ran exactly once each: three "enqueued", one "started" for "a",
    # then its "completed" and the "started" of "b" and "c"
    kinds = [f["e"] for _, f in raw.xrange(keys.events)]
    assert kinds == ["enqueued"] * 3 + ["started", "completed", "started", "started"]


async def test_pipeline_runs_in_order_with_partial_cache(engine: Engine, raw: redis.Redis) -> None:
    """Only one of the two scripts is cached: both still run, and the results line up."""
    await add(engine, new_job("a"), new_job("b"))
    a = await claim_one(engine)
    raw.script_flush()
    await claim(engine, 0)  # caches claim.lua again, complete.lua stays missing
    flags, result = await engine.complete_and_claim(Q, [(a.id, a.token, "1")], 5, "w1", 30_000)
    assert flags == [True]
    assert result is not None
    assert [j.id for j in result.jobs] == ["b"]


async def test_bad_job_maps_to_payload_error(engine: Engine, raw: redis.Redis) -> None:
    settings = [engine.keys(Q).meta]  # the fixture turned the events stream on
    with pytest.raises(PayloadError, match="empty id or name"):
        await add(engine, new_job(""))
    assert queue_keys(raw, engine) == settings


async def test_bad_job_maps_to_payload_error_after_script_flush(
    engine: Engine, raw: redis.Redis
) -> None:
    await add(engine, new_job("warm"))
    raw.script_flush()
    with pytest.raises(PayloadError, match="non-numeric"):
        await add(engine, new_job("x", priority="high"))
    assert (await engine.counts(Q)).waiting == 1


@pytest.mark.parametrize("flush", [False, True], ids=["cached", "flushed"])
async def test_bad_job_in_a_pipeline_maps_to_payload_error(
    engine: Engine, keys: QueueKeys, raw: redis.Redis, flush: bool
) -> None:
    await add(engine, new_job("warm"))
    if flush:
        raw.script_flush()
    bad = new_job("", name="n")
    calls = [("enqueue", [keys.meta], [keys.base, *enqueue_args([bad])])]
    with pytest.raises(PayloadError):
        await engine.runner.run_pipeline(calls)
    assert (await engine.counts(Q)).waiting == 1


async def test_other_errors_are_not_swallowed(
    engine: Engine, keys: QueueKeys, raw: redis.Redis
) -> None:
    raw.set(keys.meta, "not a hash")
    runner = ScriptRunner(engine.transport)
    with pytest.raises(ServerError, match="WRONGTYPE"):
        await runner.run("claim", [keys.meta], [keys.base, 1, "w", 1000, 10])
    with pytest.raises(ServerError, match="WRONGTYPE"):
        await runner.run_pipeline([("claim", [keys.meta], [keys.base, 1, "w", 1000, 10])])
