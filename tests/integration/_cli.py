"""Running ``corral`` as users do, in a subprocess, for the CLI tests."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from corral.embedded import EmbeddedServer


class Cli:
    """``cli("dlq", "ls", "shop", "--json")``: run it from an ops box (a directory without
    the job code) unless ``cwd`` says otherwise, check the exit status, and parse stdout when
    ``--json`` succeeded. ``app_dir`` holds the job code, for commands that need ``--app``."""

    def __init__(self, server: EmbeddedServer, prefix: str, root: Path, jobs_module: str) -> None:
        self.env = {**os.environ, "CORRAL_REDIS_URL": server.url, "CORRAL_PREFIX": prefix}
        self.app_dir = root
        (root / "shopapp.py").write_text(jobs_module)
        self.bare = root / "ops-box"
        self.bare.mkdir()

    def __call__(
        self,
        *args: str,
        cwd: Path | None = None,
        code: int = 0,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> Any:
        proc = self.run(*args, cwd=cwd, env=env, stdin=stdin)
        assert proc.returncode == code, f"{args}: {proc.returncode} {proc.stdout} {proc.stderr}"
        if "--json" in args and code == 0:
            return json.loads(proc.stdout)
        return proc

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        env: dict[str, str] | None = None,
        stdin: str | None = None,
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "corral", *args],
            env={**self.env, **(env or {})},
            cwd=cwd or self.bare,
            capture_output=True,
            text=True,
            timeout=60,
            input=stdin,
            stdin=None if stdin is not None else subprocess.DEVNULL,
        )

    def popen(self, *args: str, cwd: Path | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "corral", *args],
            env=self.env,
            cwd=cwd or self.bare,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
