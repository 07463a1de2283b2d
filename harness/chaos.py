"""Chaos soak: jobs across groups while worker processes and Redis are killed; then every job
is accounted for.

    python -m bench.chaos                       # 20,000 jobs, about a minute on 2 cores
    python -m bench.chaos --jobs 1500 --kill-every 1.5

A producer enqueues the jobs in batches over the first part of the run, spread over several
groups. 10% of executions fail at random (and are retried), 1% of jobs raise ``Fatal``. Worker
processes (``corral worker harness.chaos:app``) are SIGKILLed at random every few seconds and a new
one is started; the Redis server (AOF, ``appendfsync always``) is SIGKILLed once and restarted on
the same port and data directory. Workers and the producer are not restarted for that: they
reconnect. Once everything is enqueued the killing stops and the queue drains.

The accounting reads every job's final state from Redis and every execution from a trace file
the handlers append to, and prints: enqueued, completed, dead by reason, still pending, lost, and
attempts that ran more than once (each explained by a killed worker or the Redis restart, or
not). Exit status 1 if a job is lost or pending, or ran twice with nothing to explain it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import hashlib
import itertools
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import redis
from pydantic import BaseModel

from corral import App, ConnectionLost, Fatal, Fixed, PreparedJob, RetryPolicy, current_job
from corral.embedded import EmbeddedServer, ServerOptions, free_port

ROOT = Path(__file__).resolve().parents[1]
TRACE_ENV = "CHAOS_TRACE"
QUEUE = "chaos"

# -- the jobs, run by `corral worker harness.chaos:app` processes -------------------------------

app = App.from_env()


def trace(event: str) -> None:
    """Append "<event> <job id> <attempt> <pid> <unix time>" to $CHAOS_TRACE. One write() of a
    short line with O_APPEND: lines of concurrent processes never interleave, and a SIGKILL
    cannot leave half a line."""
    path = os.environ.get(TRACE_ENV)
    if not path:
        return
    job = current_job()
    line = f"{event} {job.id} {job.attempt} {os.getpid()} {time.time():.4f}\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


class Spec(BaseModel):
    n: int
    group: str
    fatal: bool = False
    fail_rate: float = 0.0
    sleep_ms: int = 0


@app.job(
    queue=QUEUE,
    group=lambda spec: spec.group,
    retry=RetryPolicy(attempts=5, backoff=Fixed(timedelta(milliseconds=20))),
    max_stalls=3,
)
async def chaos_task(spec: Spec) -> int:
    trace("start")
    if spec.sleep_ms:
        await asyncio.sleep(random.uniform(0, spec.sleep_ms) / 1000)
    if spec.fatal:
        trace("fatal")
        raise Fatal("poison job: never retried")
    if random.random() < spec.fail_rate:
        trace("fail")
        raise RuntimeError("random failure (will be retried)")
    trace("ok")
    return spec.n


# -- processes we own and kill ----------------------------------------------------------------


def _die_with_parent() -> None:
    """preexec_fn: the kernel SIGKILLs the child when we die, so a crashed run leaves no
    workers behind."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def child_pids(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
        return [int(p) for p in text.split()]
    except OSError:
        out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True)
        return [int(p) for p in out.stdout.split()]


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.2)
        return s.connect_ex(("127.0.0.1", port)) == 0


class KillableServer:
    """A Redis-compatible server on a fixed port and data directory with AOF, which can be
    SIGKILLed (the server process itself, not its guard) and started again on the same port
    and data. ``appendfsync always``: every acknowledged write is on disk before the reply."""

    def __init__(
        self,
        directory: Path,
        *,
        port: int | None = None,
        binary: Path | None = None,
        appendfsync: str = "always",
    ) -> None:
        self.port = port or free_port()
        self.options = ServerOptions(
            port=self.port, appendonly=True, appendfsync=appendfsync, dir=directory
        )
        self.binary = binary
        self._server: EmbeddedServer | None = None
        self.restarts = 0

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> KillableServer:
        self._server = EmbeddedServer(self.options, binary=self.binary).start(timeout=30)
        return self

    def server_pid(self) -> int:
        if self._server is None or self._server.pid is None:
            raise RuntimeError("server not running")
        guard = self._server.pid
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            kids = child_pids(guard)
            if kids:
                return kids[0]
            time.sleep(0.01)
        raise RuntimeError(f"no server process under guard {guard}")

    def kill(self) -> None:
        """SIGKILL the server; returns once nothing listens on the port."""
        pid = self.server_pid()
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while port_open(self.port):
            if time.monotonic() > deadline:
                raise RuntimeError(f"port {self.port} still open after SIGKILL of {pid}")
            time.sleep(0.01)
        if self._server is not None:
            self._server.stop()  # reaps the guard, which exits once its server is gone
            self._server = None

    def restart(self) -> None:
        """Start again on the same port and directory (the AOF is replayed)."""
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None


class Fleet:
    """``corral worker TARGET`` subprocesses sharing one environment; each logs to a file."""

    def __init__(
        self,
        target: str,
        url: str,
        prefix: str,
        log_dir: Path,
        *,
        lease_ms: int = 2000,
        concurrency: int = 10,
        args: Sequence[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.target = target
        self.log_dir = log_dir
        self.concurrency = concurrency
        self.args = list(args)
        self.env = {
            **os.environ,
            "CORRAL_REDIS_URL": url,
            "CORRAL_PREFIX": prefix,
            "CORRAL_LEASE_MS": str(lease_ms),
            "COLUMNS": "240",  # rich wraps log lines at the terminal width
            **(env or {}),
        }
        self.procs: list[subprocess.Popen[bytes]] = []
        self.logs: dict[int, Path] = {}
        self.killed: dict[int, float] = {}  # pid -> when it was SIGKILLed (unix time)
        log_dir.mkdir(parents=True, exist_ok=True)

    def spawn(self, *extra: str, **env: str) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "corral", "worker", self.target]
        cmd += ["-c", str(self.concurrency), *self.args, *extra]
        path = self.log_dir / f"worker-{len(self.procs)}.log"
        with path.open("wb") as out:
            proc = subprocess.Popen(
                cmd,
                env={**self.env, **env},
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
        self.procs.append(proc)
        self.logs[proc.pid] = path
        return proc

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.procs if p.poll() is None]

    def kill(self, proc: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        if sig == signal.SIGKILL:
            self.killed[proc.pid] = time.time()
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait()

    def log(self, proc: subprocess.Popen[bytes]) -> str:
        return self.logs[proc.pid].read_text(errors="replace")

    def stop(self, timeout: float = 30.0) -> dict[int, int]:
        """SIGTERM every live worker (SIGCONT first, in case one is frozen), wait, then
        SIGKILL stragglers; returns pid -> exit code."""
        for p in self.alive():
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGCONT)
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        codes: dict[int, int] = {}
        for p in self.procs:
            try:
                codes[p.pid] = p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                codes[p.pid] = p.wait()
        return codes


# -- accounting ---------------------------------------------------------------------------------


@dataclass
class Execution:
    job: str
    attempt: int
    pid: int
    at: float
    events: list[str] = field(default_factory=list)


def read_trace(path: Path) -> dict[tuple[str, int, int], Execution]:
    """Executions keyed by (job id, attempt, pid), with the events each one reached. A
    worker runs a given attempt of a job at most once, so the key identifies one execution."""
    runs: dict[tuple[str, int, int], Execution] = {}
    if not path.exists():
        return runs
    for line in path.read_text().splitlines():
        event, job, attempt, pid, at = line.split()
        key = (job, int(attempt), int(pid))
        run = runs.get(key)
        if run is None:
            run = runs[key] = Execution(job, int(attempt), int(pid), float(at))
        run.events.append(event)
    return runs


@dataclass
class Accounting:
    enqueued: int = 0
    completed: int = 0
    dead: Counter[str] = field(default_factory=Counter)
    pending: int = 0
    lost: int = 0
    completed_without_ok_run: int = 0
    repeated_attempts: int = 0  # (job, attempt) pairs that ran more than once
    extra_runs: int = 0  # executions beyond the first of such attempts
    explained_by_worker_kill: int = 0
    explained_by_redis_restart: int = 0
    unexplained: int = 0
    workers_killed: int = 0
    workers_crashed: int = 0  # exited without being killed or told to stop
    redis_restarts: int = 0
    enqueue_errors: int = 0
    enqueue_max_wait_s: float = 0.0
    stored_by_failed_enqueue: int = 0
    wall_s: float = 0.0
    examples: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            self.lost == 0
            and self.pending == 0
            and self.unexplained == 0
            and self.completed_without_ok_run == 0
            and self.workers_crashed == 0
        )

    def table(self) -> str:
        dead_total = sum(self.dead.values())
        rows: list[tuple[str, object]] = [
            ("enqueued (enqueue returned)", self.enqueued),
            ("completed", self.completed),
            ("dead", dead_total),
            *((f"  dead: {reason}", n) for reason, n in sorted(self.dead.items())),
            ("still pending (must be 0)", self.pending),
            ("lost (must be 0)", self.lost),
            ("completed without a successful run (must be 0)", self.completed_without_ok_run),
            ("attempts run more than once", self.repeated_attempts),
            ("  extra executions", self.extra_runs),
            ("  explained: worker SIGKILLed", self.explained_by_worker_kill),
            ("  explained: Redis restarted", self.explained_by_redis_restart),
            ("  unexplained (must be 0)", self.unexplained),
            ("worker processes SIGKILLed (and replaced)", self.workers_killed),
            ("worker processes that died on their own (must be 0)", self.workers_crashed),
            ("Redis SIGKILLed and restarted", self.redis_restarts),
            ("enqueue calls that raised ConnectionLost", self.enqueue_errors),
            ("  jobs stored by a try that raised or lost its reply", self.stored_by_failed_enqueue),
            ("longest enqueue call (s)", f"{self.enqueue_max_wait_s:.2f}"),
            ("wall time (s)", f"{self.wall_s:.1f}"),
        ]
        width = max(len(name) for name, _ in rows)
        lines = [f"{name:<{width}}  {value:>8}" for name, value in rows]
        lines.append("result: " + ("OK" if self.ok else "FAILED"))
        return "\n".join(lines + [f"  {e}" for e in self.examples[:10]])


def account(
    url: str,
    prefix: str,
    ids: Sequence[str],
    trace_path: Path,
    killed: dict[int, float],
    outages: Sequence[tuple[float, float]],
) -> Accounting:
    acct = Accounting(enqueued=len(ids))
    client = redis.Redis.from_url(url, decode_responses=True)
    states: dict[str, tuple[str | None, str | None]] = {}
    try:
        for start in range(0, len(ids), 1000):
            chunk = ids[start : start + 1000]
            pipe = client.pipeline(transaction=False)
            for job_id in chunk:
                pipe.hmget(f"{prefix}:{{{QUEUE}}}:j:{job_id}", ["st", "dr"])
            for job_id, (st, dr) in zip(chunk, pipe.execute(), strict=True):
                states[job_id] = (st, dr)
    finally:
        client.close()
    runs = read_trace(trace_path)
    ok_runs: set[str] = {r.job for r in runs.values() if "ok" in r.events}
    for job_id in ids:
        st, dr = states[job_id]
        if st == "completed":
            acct.completed += 1
            if job_id not in ok_runs:
                acct.completed_without_ok_run += 1
                acct.examples.append(f"completed without an ok run: {job_id}")
        elif st == "dead":
            acct.dead[dr or "?"] += 1
        elif st in ("waiting", "delayed", "active"):
            acct.pending += 1
            acct.examples.append(f"pending: {job_id} is {st}")
        else:
            acct.lost += 1
            acct.examples.append(f"lost: {job_id} ({st or 'no hash'})")
    by_attempt: dict[tuple[str, int], list[Execution]] = defaultdict(list)
    for run in runs.values():
        by_attempt[(run.job, run.attempt)].append(run)
    for (job_id, attempt), execs in by_attempt.items():
        if len(execs) < 2:
            continue
        execs.sort(key=lambda r: r.at)
        acct.repeated_attempts += 1
        acct.extra_runs += len(execs) - 1
        # Each superseded execution needs a reason between its start and the next execution's
        # start: its worker was SIGKILLed, or Redis went down (leases ran out meanwhile).
        for run, after in itertools.pairwise(execs):
            if run.at <= killed.get(run.pid, -1.0) <= after.at:
                acct.explained_by_worker_kill += 1
            elif any(run.at <= down <= after.at for down, _ in outages):
                acct.explained_by_redis_restart += 1
            else:
                acct.unexplained += 1
                acct.examples.append(
                    f"unexplained re-run: job {job_id} attempt {attempt} ran in pid {run.pid} "
                    f"at {run.at:.3f}, again in pid {after.pid} at {after.at:.3f}"
                )
    return acct


# -- the soak ---------------------------------------------------------------------------------


@dataclass
class Config:
    jobs: int = 20_000
    groups: int = 8
    workers: int = 3
    concurrency: int = 20
    enqueue_s: float = 20.0  # spread the enqueues over this long
    kill_every_s: float = 3.0  # mean time between worker SIGKILLs (uniform 0.5x..1.5x)
    redis_restart_at: float = 0.4  # after this fraction of the jobs is enqueued
    redis_down_s: float = 1.0
    lease_ms: int = 2000
    fail_rate: float = 0.10
    fatal_rate: float = 0.01
    sleep_ms: int = 50  # each execution sleeps up to this long (so kills catch jobs mid-run)
    drain_timeout_s: float = 120.0
    seed: int = 1


def is_fatal(n: int, rate: float) -> bool:
    """Deterministic 1-in-100 (for rate 0.01) choice of poison jobs."""
    digest = hashlib.blake2b(str(n).encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") / 2**32 < rate


@dataclass
class _Run:
    ids: list[str] = field(default_factory=list)
    outages: list[tuple[float, float]] = field(default_factory=list)
    enqueue_errors: int = 0
    enqueue_max_wait_s: float = 0.0
    stored_by_failed_enqueue: int = 0
    redis_down: bool = False


async def _produce(
    cfg: Config, producer: App, server: KillableServer, run: _Run, log: list[str]
) -> None:
    batch = max(1, cfg.jobs // 100)
    pause = cfg.enqueue_s / max(1, cfg.jobs // batch)
    restarted = False
    for start in range(0, cfg.jobs, batch):
        prepared = [
            chaos_task.prepare(
                Spec(
                    n=n,
                    group=f"g{n % cfg.groups}",
                    fatal=is_fatal(n, cfg.fatal_rate),
                    fail_rate=cfg.fail_rate,
                    sleep_ms=cfg.sleep_ms,
                )
            )
            for n in range(start, min(cfg.jobs, start + batch))
        ]
        if not restarted and start >= cfg.jobs * cfg.redis_restart_at:
            restarted = True
            down = time.time()
            run.redis_down = True
            server.kill()
            log.append(f"{down:.3f} Redis SIGKILLed")
            # during the outage: must raise ConnectionLost (nothing can be stored)
            stored = await _enqueue(producer, run, prepared, retry=False)
            await asyncio.sleep(max(0.0, cfg.redis_down_s - (time.time() - down)))
            server.restart()  # on this thread: the guard dies with the thread that forks it
            run.outages.append((down, time.time()))
            run.redis_down = False
            log.append(f"{time.time():.3f} Redis restarted")
            if stored:
                continue
        await _enqueue(producer, run, prepared, retry=True)
        await asyncio.sleep(pause)


async def _enqueue(
    producer: App,
    run: _Run,
    prepared: list[PreparedJob[int]],
    *,
    retry: bool,
) -> bool:
    """Enqueue one batch; on ConnectionLost re-send the same prepared jobs (same ids, so a
    batch that was stored after all is found, not stored twice). False if it gave up."""
    while True:
        t0 = time.monotonic()
        try:
            handles = await producer.enqueue_many(prepared)
        except ConnectionLost:
            run.enqueue_max_wait_s = max(run.enqueue_max_wait_s, time.monotonic() - t0)
            run.enqueue_errors += 1
            if not retry:
                return False
            await asyncio.sleep(0.2)
            continue
        run.enqueue_max_wait_s = max(run.enqueue_max_wait_s, time.monotonic() - t0)
        for h in handles:
            run.ids.append(h.id)
            if not h.created:  # fresh random ids: an earlier try of this batch stored it (a
                run.stored_by_failed_enqueue += 1  # call that raised, or a lost reply retried)
        return True


async def _killer(
    cfg: Config, fleet: Fleet, run: _Run, stop: asyncio.Event, log: list[str]
) -> None:
    """SIGKILL a random worker every few seconds and start a new one. Not while Redis is
    down: the workers alive then must ride out the outage (a worker that starts while Redis
    is unreachable exits with status 1, by design)."""
    rng = random.Random(cfg.seed)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), rng.uniform(0.5, 1.5) * cfg.kill_every_s)
            return
        if run.redis_down:
            continue
        alive = fleet.alive()
        if alive:
            victim = rng.choice(alive)
            fleet.kill(victim)
            log.append(f"{time.time():.3f} SIGKILLed worker {victim.pid}")
        fleet.spawn()


async def _drain(producer: App, timeout: float) -> None:
    """Wait until nothing is waiting, delayed or running (or the timeout)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        counts = await producer.queue(QUEUE).counts()
        if counts.waiting + counts.delayed + counts.active == 0:
            return
        await asyncio.sleep(0.25)


async def soak(cfg: Config, work_dir: Path, *, verbose: bool = False) -> Accounting:
    random.seed(cfg.seed)
    t0 = time.monotonic()
    server = KillableServer(work_dir / "redis").start()
    prefix = "chaos" + uuid.uuid4().hex[:8]
    trace_path = work_dir / "trace.log"
    fleet = Fleet(
        "harness.chaos:app",
        server.url,
        prefix,
        work_dir / "logs",
        lease_ms=cfg.lease_ms,
        concurrency=cfg.concurrency,
        env={TRACE_ENV: str(trace_path)},
    )
    producer = App.from_url(server.url, prefix=prefix)
    run = _Run()
    log: list[str] = []
    try:
        async with producer:
            # keep every finished job, so each one can be looked up at the end
            await producer.queue(QUEUE).set_retention(
                completed_max=cfg.jobs * 2, dead_max=cfg.jobs * 2
            )
            for _ in range(cfg.workers):
                fleet.spawn()
            stop_killing = asyncio.Event()
            killer = asyncio.create_task(_killer(cfg, fleet, run, stop_killing, log))
            await _produce(cfg, producer, server, run, log)
            stop_killing.set()
            await killer
            await _drain(producer, cfg.drain_timeout_s)
            codes = fleet.stop()
        acct = account(server.url, prefix, run.ids, trace_path, fleet.killed, run.outages)
    finally:
        fleet.stop(timeout=5)
        server.stop()
    acct.workers_killed = len(fleet.killed)
    acct.redis_restarts = server.restarts
    acct.enqueue_errors = run.enqueue_errors
    acct.enqueue_max_wait_s = run.enqueue_max_wait_s
    acct.stored_by_failed_enqueue = run.stored_by_failed_enqueue
    acct.wall_s = time.monotonic() - t0
    # -SIGTERM: our own stop() reached a worker still importing, before it set up its handler
    # (a worker that runs exits 0 on SIGTERM); that is not a worker dying on its own
    crashed = {
        pid: c
        for pid, c in codes.items()
        if pid not in fleet.killed and c not in (0, -signal.SIGTERM)
    }
    acct.workers_crashed = len(crashed)
    for pid, code in crashed.items():
        tail = fleet.logs[pid].read_text(errors="replace").strip().splitlines()[-3:]
        acct.examples.append(f"worker {pid} exited with {code}: {' | '.join(tail)}")
    if verbose:
        print("\n".join(log))
    return acct


@contextlib.contextmanager
def scratch_dir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="corral-chaos-"))
    try:
        yield path
    finally:
        if keep:
            print(f"logs and trace kept in {path}")
        else:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    d = Config()
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=d.jobs)
    parser.add_argument("--groups", type=int, default=d.groups)
    parser.add_argument("--workers", type=int, default=d.workers)
    parser.add_argument("--concurrency", type=int, default=d.concurrency)
    parser.add_argument("--enqueue-seconds", type=float, default=d.enqueue_s)
    parser.add_argument("--kill-every", type=float, default=d.kill_every_s)
    parser.add_argument("--lease-ms", type=int, default=d.lease_ms)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument("--keep", action="store_true", help="keep the logs and trace")
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    cfg = Config(
        jobs=args.jobs,
        groups=args.groups,
        workers=args.workers,
        concurrency=args.concurrency,
        enqueue_s=args.enqueue_seconds,
        kill_every_s=args.kill_every,
        lease_ms=args.lease_ms,
        seed=args.seed,
    )
    with scratch_dir(args.keep) as path:
        acct = asyncio.run(soak(cfg, path, verbose=args.verbose))
        print(acct.table())
        if not acct.ok and not args.keep:
            print(f"(run with --keep to keep the worker logs; they were in {path})")
    return 0 if acct.ok else 1


if __name__ == "__main__":
    sys.exit(main())
