"""Bounded memory: with default retention, Redis memory after many completed no-op jobs stays
under a fixed bound, whatever the number of jobs. ``python -m bench.memory`` measures the real
figure for 100,000 jobs (docs/guarantees.md); this runs 15,000, enough to fill both caps (the
newest 1,000 completed jobs and, if the events stream is on, about 10,000 events), against
the same bound."""

from __future__ import annotations

from collections.abc import Callable

from corral.embedded import EmbeddedServer
from harness.memory import measure

BOUND = 8 * 1024 * 1024  # docs/guarantees.md: under 8 MiB after 100,000 jobs (measured ~2.6)


async def test_memory_is_bounded_after_many_completed_jobs(
    fresh_server: Callable[..., EmbeddedServer],
) -> None:
    result = await measure(fresh_server().url, 15_000)
    print(result)
    assert result["completed_kept"] == 1000  # default completed_max
    assert result["completed_trimmed"] == 14_000
    assert result["events"] <= 10_000 + 200  # if on: MAXLEN ~ trims whole stream nodes
    assert result["keys"] <= 3 * 1000 + 10  # a few keys per kept job, not per job run
    assert result["used_memory_after"] < BOUND
