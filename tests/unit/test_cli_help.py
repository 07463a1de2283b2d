"""Every command's --help follows the same rules (issue 13.5): no Python type tags or
``{placeholders}``, a description for every command, argument and option, required ones
marked (and required options in the usage line), no command describing itself by its own
name; ``corral --version`` answers."""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from corral.cli import COMMANDS as COMMANDS_TABLE
from corral.cli import cli

TYPE_TAG = re.compile(r"<[a-z][a-z_\[\], |]*>")


def walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """Every command under ``command``, through Click's own API (the root loads its
    subcommands lazily)."""
    yield path, command
    if hasattr(command, "list_commands"):
        ctx = command.make_context("corral", [], resilient_parsing=True)
        for name in command.list_commands(ctx):
            yield from walk(command.get_command(ctx, name), (*path, name))


COMMANDS = list(walk(typer.main.get_command(cli)))


def test_the_top_level_help_says_what_each_command_says_of_itself() -> None:
    """The root lists its commands without importing them: its lines must be theirs."""
    root = typer.main.get_command(cli)
    ctx = root.make_context("corral", [], resilient_parsing=True)
    for entry in COMMANDS_TABLE:
        own = root.get_command(ctx, entry.name).get_short_help_str(200)  # type: ignore[union-attr]
        assert entry.summary == own, entry.name


def test_the_command_line_starts_without_redis_or_the_worker() -> None:
    """`corral --help` must answer at once: importing the CLI loads no Redis client, no
    worker, no job machinery (measured in docs/performance.md)."""
    heavy = ("redis", "uvloop", "corral.worker", "corral.engine", "corral.app")
    code = f"import sys, corral.cli; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_the_walk_finds_every_command() -> None:
    paths = {" ".join(p) for p, _ in COMMANDS}
    assert {"", "worker", "enqueue", "queue ls", "jobs show", "dlq replay", "server url"} <= paths
    assert len(paths) > 30


@pytest.mark.parametrize(
    ("path", "command"), COMMANDS, ids=[" ".join(p) or "corral" for p, _ in COMMANDS]
)
def test_help_follows_the_rules(path: tuple[str, ...], command: Any) -> None:
    result = CliRunner().invoke(cli, [*path, "--help"], env={"COLUMNS": "100"})
    assert result.exit_code == 0, result.output
    text = result.output
    usage = text.splitlines()[0]
    assert usage.startswith(f"Usage: corral {' '.join(path)}".rstrip()), usage
    assert not TYPE_TAG.search(text), text
    assert "{" not in usage and "}" not in usage, usage
    assert command.help and command.help.strip(), f"{path}: no description"
    body = text.split("\n", 1)[1]
    if path:  # a command does not describe itself by its own name ("same as `corral queue ls`")
        assert f"corral {' '.join(path)}`" not in body, body
    for param in command.params:
        if getattr(param, "hidden", False):
            continue
        assert param.help and param.help.strip(), f"{path}: {param.name} has no description"
        if param.required:
            shown = param.metavar or param.name.upper()
            line = next(ln for ln in body.splitlines() if shown in ln or param.opts[0] in ln)
            assert "[required]" in body[body.index(line) :].split("\n  -")[0], (param.name, text)
            if param.param_type_name == "option":
                assert f"{param.opts[0]} {param.metavar}" in usage, usage
            else:
                assert f" {shown}" in usage and f"[{shown}]" not in usage, usage
        elif param.param_type_name == "argument":
            assert f"[{param.metavar or param.name.upper()}" in usage, usage


def test_version() -> None:
    env = {**os.environ, "COLUMNS": "80"}
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "--version"], capture_output=True, text=True, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"corral {importlib.metadata.version('corral')}"


def test_a_usage_error_shows_the_same_usage_line_and_names_the_argument() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "dlq", "replay"], capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert proc.stderr.startswith("Usage: corral dlq replay [OPTIONS] QUEUE [JOB_ID]\n")
    assert "Missing argument 'QUEUE'" in proc.stderr
