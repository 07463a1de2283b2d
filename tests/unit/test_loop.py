"""corral.loop: the event loop of Corral's own entry points."""

from __future__ import annotations

import asyncio

import pytest

from corral.errors import ConfigError
from corral.loop import ENV_EVENT_LOOP, loop_factory, loop_name, run


async def _which() -> str:
    return loop_name(asyncio.get_running_loop())


def test_auto_runs_on_uvloop_when_installed() -> None:
    pytest.importorskip("uvloop")
    assert run(_which()) == "uvloop"


def test_asyncio_can_be_chosen(monkeypatch: pytest.MonkeyPatch) -> None:
    assert run(_which(), choice="asyncio") == "asyncio"
    monkeypatch.setenv(ENV_EVENT_LOOP, "asyncio")
    assert run(_which()) == "asyncio"
    assert loop_factory() is asyncio.new_event_loop


def test_a_bad_choice_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(ENV_EVENT_LOOP, "trio")
    with pytest.raises(ConfigError, match="CORRAL_EVENT_LOOP must be auto, uvloop or asyncio"):
        loop_factory()


def test_run_returns_what_the_coroutine_returns_and_closes_its_loop() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def main() -> int:
        loops.append(asyncio.get_running_loop())
        return 42

    assert run(main()) == 42
    assert loops[0].is_closed()
