"""The chaos soak of ``harness/chaos.py``, shortened: 1,500 jobs over 5 groups, 10% of executions
failing at random (retried), 1% Fatal, a worker SIGKILLed (and replaced) every ~1.5 s, Redis
SIGKILLed and restarted once. Every job is accounted for."""

from __future__ import annotations

from pathlib import Path

from harness.chaos import Config, soak


async def test_chaos_soak(tmp_path: Path) -> None:
    cfg = Config(
        jobs=1500,
        groups=5,
        workers=2,
        concurrency=8,
        enqueue_s=8.0,
        kill_every_s=1.5,
        lease_ms=2000,
        drain_timeout_s=60.0,
    )
    acct = await soak(cfg, tmp_path)
    print(acct.table())
    assert acct.ok, acct.table()
    assert acct.enqueued == cfg.jobs
    assert acct.completed + sum(acct.dead.values()) == cfg.jobs
    assert acct.workers_killed >= 3 and acct.redis_restarts == 1
    assert acct.enqueue_errors >= 1  # the enqueue during the outage was refused, not faked
    assert 0 < acct.dead["fatal"] < 40  # ~1% poison jobs, never retried
