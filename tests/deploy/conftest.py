"""promtool for the deploy tests: on PATH or beside the interpreter (``scripts/dev test`` puts
Debian's into the virtualenv). Missing, the promtool tests skip, except under ``CI=true``,
where a missing promtool fails them: CI must never pass without having run the rules."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest


def find_promtool() -> str | None:
    found = shutil.which("promtool")
    if found:
        return found
    beside = Path(sys.executable).parent / "promtool"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


@pytest.fixture(scope="session")
def promtool() -> str:
    path = find_promtool()
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail("promtool is missing under CI=true (scripts/dev test installs it)")
        pytest.skip("promtool is not installed (scripts/dev test installs it)")
    return path
