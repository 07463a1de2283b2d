"""Every code block in README.md and docs/*.md runs, against a real server.

A Python block runs on its own, in a subprocess, unless its first line says it continues
(``# continues ...``): then it is joined to the blocks before it, so a reader knows which
examples stand alone. A block whose first line is ``# file: NAME.py`` is a file of the example
project: it is written into the directory the examples run in (for a script run as ``python
NAME.py`` in a bash block, or a module the others import), not run itself. Bash blocks run in
a shell with the virtualenv on PATH. The README's first block (the two set-up commands) runs
the demo for real and the test command in collect-only mode, so the suite does not run itself;
its install commands run in a throwaway virtualenv (``test_install_commands``).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from corral.embedded import EmbeddedServer

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)
FILE_BLOCK = re.compile(r"^# file: (\S+)\n")
CONTINUES = "# continues"


def blocks(path: Path, lang: str) -> list[str]:
    """The blocks of a language, without the files of the example project."""
    return [
        body
        for kind, body in BLOCK.findall(path.read_text())
        if kind == lang and not FILE_BLOCK.match(body)
    ]


def chains(path: Path) -> list[str]:
    """The scripts a document's Python blocks make: each block that does not continue
    starts a new one."""
    scripts: list[list[str]] = []
    for body in blocks(path, "python"):
        if body.startswith(CONTINUES) and scripts:
            scripts[-1].append(body)
        else:
            scripts.append([body])
    return ["\n\n".join(parts) for parts in scripts]


def write_files(paths: list[Path], where: Path) -> None:
    """The ``# file:`` blocks of these documents, written into ``where``."""
    for path in paths:
        for kind, body in BLOCK.findall(path.read_text()):
            found = FILE_BLOCK.match(body)
            if kind == "python" and found:
                (where / found.group(1)).write_text(body)


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
    scripts = chains(path)
    if not scripts:
        pytest.skip("no python blocks")
    if path.name == "operations.md":  # a runbook acts on queues that exist
        seed(server, prefix, tmp_path)
    write_files([path], tmp_path)
    env = {**env_for(server, prefix), "PYTHONPATH": str(tmp_path)}
    for number, code in enumerate(scripts, 1):
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            cwd=ROOT,
        )
        assert proc.returncode == 0, f"script {number}: {proc.stderr[-3000:]}"


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
    """Commands to run against the server (installs are tried in test_install_commands)."""
    lines = []
    for body in blocks(path, "bash"):
        lines += [ln.strip() for ln in body.splitlines() if ln.strip() and not ln.startswith("#")]
    return [ln for ln in lines if not ln.startswith("pip install")]


def _install_lines() -> list[str]:
    return [
        ln.strip()
        for body in blocks(ROOT / "README.md", "bash")
        for ln in body.splitlines()
        if ln.strip().startswith("pip install")
    ]


def test_install_commands(tmp_path: Path) -> None:
    """README's ways to add Corral to a project, in a throwaway virtualenv: the repository's
    address becomes this checkout (its committed HEAD), the clone's path this directory. The
    dependencies come from the index like any others: ``--no-deps`` keeps the test to Corral's
    own install (a wheel built from pyproject.toml, its version, its ``corral`` command)."""
    lines = _install_lines()
    assert len(lines) == 2, lines
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    toml = next(
        body for kind, body in BLOCK.findall((ROOT / "README.md").read_text()) if kind == "toml"
    )
    (requirement,) = tomllib.loads(toml)["project"]["dependencies"]
    assert f'"{requirement}"' in lines[0]  # the pyproject line is the one pip is shown
    for number, line in enumerate(lines):
        venv = tmp_path / f"venv{number}"
        subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
        command = (
            line.replace(
                "pip install",
                f"{sys.executable} -m pip --python {venv}/bin/python install --no-deps -q",
                1,
            )
            .replace(
                "https://github.com/your-org/corral.git@main", f"file://localhost{ROOT}@{head}"
            )
            .replace("/path/to/corral", str(ROOT))
        )
        proc = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, f"{line}: {proc.stdout[-1500:]} {proc.stderr[-1500:]}"
        shown = subprocess.run(
            [sys.executable, "-m", "pip", "--python", f"{venv}/bin/python", "show", "-f", "corral"],
            capture_output=True,
            text=True,
        )
        assert "Version: 0.1.0" in shown.stdout, shown.stdout + shown.stderr
        assert (venv / "bin" / "corral").exists()


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
    write_files(DOCS, tmp_path)
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
