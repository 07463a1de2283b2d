"""Where the shared server lives: every process of a project must compute the same place."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest

from corral import ConfigError
from corral.devserver import (
    DEFAULT_IDLE,
    MAX_SOCKET_PATH,
    ServerHome,
    idle_from_env,
    locate,
    parse_idle,
    project_root,
)


@pytest.mark.parametrize("marker", ["pyproject.toml", "setup.py", "setup.cfg", ".git"])
def test_home_is_at_the_project_root(tmp_path: Path, marker: str) -> None:
    if marker == ".git":
        (tmp_path / marker).mkdir()
    else:
        (tmp_path / marker).touch()
    deep = tmp_path / "src" / "shop" / "jobs"
    deep.mkdir(parents=True)
    assert project_root(deep) == tmp_path
    assert locate({}, cwd=deep).path == tmp_path / ".corral"
    assert locate({}, cwd=tmp_path).path == tmp_path / ".corral"


def test_without_a_project_the_current_directory(tmp_path: Path) -> None:
    if project_root(tmp_path) != tmp_path:
        pytest.skip("the temp dir sits inside a project")
    assert locate({}, cwd=tmp_path).path == tmp_path / ".corral"


def test_corral_home_wins(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").touch()
    chosen = tmp_path / "elsewhere"
    assert locate({"CORRAL_HOME": str(chosen)}, cwd=tmp_path).path == chosen
    assert not chosen.exists(), "locating creates nothing"


def test_socket_in_the_home_or_a_stable_short_path() -> None:
    short = ServerHome(Path("/srv/shop/.corral"))
    assert short.socket == Path("/srv/shop/.corral/redis.sock")
    assert short.url == "unix:///srv/shop/.corral/redis.sock"
    long = ServerHome(Path("/srv/" + "x" * MAX_SOCKET_PATH + "/.corral"))
    assert long.socket.parent == Path(f"/tmp/corral-{os.getuid()}")
    assert long.socket == ServerHome(Path(str(long.path))).socket, "the same for everyone"
    other = ServerHome(Path("/srv/" + "y" * MAX_SOCKET_PATH + "/.corral"))
    assert other.socket != long.socket
    assert len(os.fsencode(long.socket)) <= MAX_SOCKET_PATH


@pytest.mark.parametrize(
    ("text", "seconds"), [("900", 900), ("2.5", 2.5), ("10m", 600), ("1h30m", 5400), ("0", 0)]
)
def test_idle_in_seconds_or_a_duration(text: str, seconds: float) -> None:
    assert parse_idle(text) == timedelta(seconds=seconds)
    assert idle_from_env({"CORRAL_EMBEDDED_IDLE": text}) == timedelta(seconds=seconds)


def test_idle_default_and_bad_values() -> None:
    assert idle_from_env({}) == DEFAULT_IDLE == timedelta(minutes=15)
    for bad in ("soon", "-5", "5 parsecs"):
        with pytest.raises(ConfigError, match="CORRAL_EMBEDDED_IDLE"):
            idle_from_env({"CORRAL_EMBEDDED_IDLE": bad})
