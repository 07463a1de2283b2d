"""Every code block in README.md and docs/*.md runs, against a real server.

Python blocks of one file are joined into one script (later blocks build on earlier ones) and
run in a subprocess; bash blocks run in a shell with the virtualenv on PATH. The README's first
block (the two set-up commands) runs the demo for real and the test command in collect-only
mode, so the suite does not run itself.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from corral.embedded import EmbeddedServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(path: Path, lang: str) -> list[str]:
    return [body for kind, body in BLOCK.findall(path.read_text()) if kind == lang]


def env_for(server: EmbeddedServer, prefix: str) -> dict[str, str]:
    env = dict(os.environ)
    env["CORRAL_REDIS_URL"] = server.url
    env["CORRAL_PREFIX"] = prefix
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    return env


def test_guides_have_runnable_code() -> None:
    for name in ("README.md", "jobs.md", "workers.md"):
        path = next(p for p in DOCS if p.name == name)
        assert blocks(path, "python"), f"{name} has no python example"


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_python_blocks_run(path: Path, server: EmbeddedServer, prefix: str, tmp_path: Path) -> None:
    code = "\n\n".join(blocks(path, "python"))
    if not code:
        pytest.skip("no python blocks")
    if path.name == "operations.md":  # a runbook acts on queues that exist
        seed(server, prefix, tmp_path)
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env_for(server, prefix),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_readme_snippet_runs_on_embedded_server(prefix: str) -> None:
    """The README's example with no CORRAL_REDIS_URL: it runs on the shared server."""
    code = blocks(ROOT / "README.md", "python")[0]
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_REDIS_URL"}
    proc = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "result: 7" in proc.stdout


APP_MODULE = """
from corral import App, RetryPolicy
app = App.from_env()

@app.job(queue="recipes")
async def noop(x: int) -> int:
    return x

@app.job(queue="recipes", retry=RetryPolicy(attempts=1), group=lambda shop: shop)
async def flaky(shop: str) -> None:
    raise ConnectionError(f"{shop} API unreachable")
"""

# operations.md shows this function (the edit `dlq replay --edit myapp.fixes:...` calls)
FIXES_MODULE = """
def to_backup_shop(payload: dict) -> dict:
    return {**payload, "shop": "backup.myshopify.com"}
"""

SEED = """
import asyncio
from corral import Worker
from myapp.jobs import app, noop, flaky

async def main():
    async with app:
        for i in range(3):
            await noop.enqueue(i)
            await flaky.enqueue(f"shop-{i}.myshopify.com")
        await Worker(app, ["recipes"], burst=True).run()

asyncio.run(main())
"""


def seed(server: EmbeddedServer, prefix: str, tmp_path: Path) -> None:
    """An app module in ``tmp_path`` and something for the runbook to find: completed and
    dead jobs in the queue ``recipes``."""
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "jobs.py").write_text(APP_MODULE)
    (tmp_path / "myapp" / "fixes.py").write_text(FIXES_MODULE)
    proc = subprocess.run(
        [sys.executable, "-c", SEED],
        env=env_for(server, prefix),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr


def _bash_lines(path: Path) -> list[str]:
    lines = []
    for body in blocks(path, "bash"):
        lines += [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
    return lines


def test_readme_first_block_is_demo_then_tests() -> None:
    first = BLOCK.search((ROOT / "README.md").read_text())
    assert first is not None
    commands = [ln for ln in first.group(2).splitlines() if ln.strip()]
    assert commands == ["scripts/dev demo", "scripts/dev test"]


def test_readme_demo_command_runs() -> None:
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_REDIS_URL"}
    env["CORRAL_VENV"] = str(Path(sys.executable).parents[1])
    proc = subprocess.run(
        ["scripts/dev", "demo", "--jobs", "40"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "every job ended" in proc.stdout


def test_readme_test_command_collects() -> None:
    env = dict(os.environ)
    env["CORRAL_VENV"] = str(Path(sys.executable).parents[1])
    proc = subprocess.run(
        ["scripts/dev", "test", "--collect-only", "-q"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "tests collected" in proc.stdout


def test_other_bash_blocks_run(server: EmbeddedServer, prefix: str, tmp_path: Path) -> None:
    """`corral worker` examples need an app module; the rest run as written."""
    seed(server, prefix, tmp_path)
    lines = _bash_lines(ROOT / "README.md")[2:]
    for path in DOCS[1:]:
        lines += _bash_lines(path)
    assert lines
    for line in lines:
        cmd = line
        if line.startswith("corral worker ") and "--help" not in line:
            cmd = line + " --burst"
        proc = subprocess.run(
            cmd,
            shell=True,
            env=env_for(server, prefix),
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert proc.returncode == 0, f"{line}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
