"""Per-job-name concurrency inside one worker process (``@app.job(concurrency=N)``,
``Worker(limits={name: N})``).

The claim script does not know these limits: it hands out jobs by priority and group, not by
name. So a claimed job whose name is at its limit waits here, in the worker, for a turn (first
come, first served), holding one of the worker's slots; its lease is kept by the heartbeats
like any running job's, and its timeout starts only when its handler does. A backlog of one
name can thus fill a worker's slots while other names wait in Redis: a queue of its own is the
way to isolate a kind of job completely.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping

from corral.definition import JobDefinition, check_job_concurrency
from corral.errors import ConfigError


class NameLimits:
    """One semaphore per limited job name; names without a limit have none."""

    def __init__(
        self, definitions: Iterable[JobDefinition], overrides: Mapping[str, int] | None = None
    ) -> None:
        known = {d.name: d.concurrency for d in definitions}
        unknown = sorted(set(overrides or {}) - set(known))
        if unknown:
            raise ConfigError(
                f"limits name jobs this App does not define: {', '.join(unknown)} "
                f"(known: {', '.join(sorted(known)) or 'none'})"
            )
        for name, value in (overrides or {}).items():
            check_job_concurrency(value, f"the limit of {name!r}")
            known[name] = value
        self.limits = {name: n for name, n in known.items() if n is not None}
        self._gates = {name: asyncio.Semaphore(n) for name, n in self.limits.items()}

    def gate(self, name: str) -> asyncio.Semaphore | None:
        return self._gates.get(name)
