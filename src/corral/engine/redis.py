"""The Engine: typed methods over the Lua scripts, one per state transition.

Only this module (with ``connection`` and ``scripts``) imports redis. Everything above it works
with plain Python values: ids, tokens, JSON strings and milliseconds.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, cast

from redis.asyncio import Redis
from redis.exceptions import RedisError

from corral.engine.errors import corral_error, redis_errors
from corral.engine.keys import QueueKeys, registry_key
from corral.engine.scripts import Executor, ScriptRunner
from corral.engine.transport import Transport

if TYPE_CHECKING:
    from corral.engine.batching import EnqueueBatcher

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JobSpec:
    """What the jobs of one definition (with one set of options) share; sent once per batch."""

    name: str
    priority: int = 500  # Priority.NORMAL, which enqueue does not store
    max_attempts: int = 3
    options_json: str = ""
    max_stalls: int = 1
    max_reschedules: int = 25
    keep_completed_ms: int = -1
    keep_dead_ms: int = -1
    wire: tuple[Any, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # the script's arguments for this spec, made once (a spec serves many enqueues)
        wire = (
            self.name,
            self.priority,
            self.max_attempts,
            self.options_json,
            self.max_stalls,
            self.max_reschedules,
            self.keep_completed_ms,
            self.keep_dead_ms,
        )
        object.__setattr__(self, "wire", wire)


@dataclass(slots=True)  # not frozen: a frozen dataclass costs 1 µs more to make, per job
class NewJob:
    """A job ready to store: validated, serialised, with options flattened to numbers."""

    id: str
    payload: str
    group: str
    delay_ms: int
    spec: JobSpec

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def priority(self) -> int:
        return self.spec.priority


def enqueue_args(jobs: Sequence[NewJob]) -> list[Any]:
    """The enqueue script's arguments after the base: the distinct specs, then 5 per job."""
    if len(jobs) == 1:  # an awaited enqueue: no bookkeeping
        job = jobs[0]
        return [1, *job.spec.wire, job.id, job.payload, job.group, job.delay_ms, 1]
    index: dict[int, int] = {}
    specs: list[Any] = []
    rows: list[Any] = []
    for job in jobs:
        spec = job.spec
        number = index.get(id(spec))
        if number is None:
            number = index[id(spec)] = len(index) + 1
            specs.extend(spec.wire)
        rows += (job.id, job.payload, job.group, job.delay_ms, number)
    return [len(index), *specs, *rows]


@dataclass(slots=True)  # not frozen: made for every job a worker runs (frozen: +2 µs each)
class Claimed:
    """A leased job as the claim script hands it out."""

    id: str
    name: str
    payload: str
    attempt: int
    max_attempts: int
    options_json: str
    token: str
    group: str
    reschedules: int = 0


@dataclass(frozen=True, slots=True)
class ClaimResult:
    jobs: list[Claimed]
    next_due_ms: int | None
    paused: bool


def _count(text: str) -> int:
    """A counter as the job hash holds it (written by hand it may read "3.0", or garbage)."""
    try:
        return int(text)
    except ValueError:
        try:
            return int(float(text))
        except ValueError:
            return 0


def _parse_claim(raw: list[Any]) -> ClaimResult:
    nxt, token = int(raw[0]), str(raw[2])
    jobs = []
    for i in range(3, len(raw), 2):
        job_id, name, attempt, max_attempts, reschedules, options, payload = raw[i].split("\x00", 6)
        jobs.append(
            Claimed(
                job_id,
                name,
                payload,
                int(attempt),
                _count(max_attempts),
                options,
                token,
                raw[i + 1],
                _count(reschedules),
            )
        )
    return ClaimResult(jobs, None if nxt < 0 else nxt, raw[1] == 1)


class Engine:
    """Async access to queues in one Redis database. Cheap to create; owns its client."""

    def __init__(
        self,
        client: Redis,
        prefix: str = "corral",
        transport: Transport | None = None,
        where: str = "the configured URL",
    ) -> None:
        self.client = client
        self.where = where  # the redacted URL, for error messages
        self.prefix = prefix
        self.transport = transport
        self.fast: Executor = transport if transport is not None else client
        self.runner = ScriptRunner()
        self._keys: dict[str, QueueKeys] = {}
        self._registered: set[str] = set()
        self._batchers: dict[str, EnqueueBatcher] = {}

    def keys(self, queue: str) -> QueueKeys:
        k = self._keys.get(queue)
        if k is None:
            k = self._keys[queue] = QueueKeys(self.prefix, queue)
        return k

    async def _run(self, name: str, queue: str, args: list[Any]) -> Any:
        k = self.keys(queue)
        try:
            return await self.runner.run(self.fast, name, [k.meta], [k.base, *args])
        except (RedisError, OSError) as exc:
            raise corral_error(exc, self.where) from exc

    @redis_errors
    async def ping(self) -> None:
        await self.client.ping()

    @redis_errors
    async def close(self) -> None:
        if self.transport is not None:
            await self.transport.close()
        await self.client.aclose()

    # -- producers ---------------------------------------------------------------------------

    @redis_errors
    async def register_queue(self, queue: str) -> None:
        if queue not in self._registered:
            await self.client.sadd(registry_key(self.prefix), queue)
            self._registered.add(queue)

    async def enqueue(self, queue: str, jobs: Sequence[NewJob]) -> list[bool]:
        """Store jobs atomically; per job True if stored, False if its id already existed.
        Concurrent callers on this loop share one script call (see ``batching``). Connection
        failures surface as ConnectionLost from ``register_queue`` and ``_run``."""
        if queue not in self._registered:
            await self.register_queue(queue)
        batcher = self._batchers.get(queue)
        if batcher is None:
            from corral.engine.batching import EnqueueBatcher

            batcher = self._batchers.setdefault(
                queue, EnqueueBatcher(lambda batch: self.store(queue, batch))
            )
        return await batcher.submit(jobs)

    async def store(self, queue: str, jobs: Sequence[NewJob]) -> list[bool]:
        """One enqueue script call for exactly these jobs."""
        flags = await self._run("enqueue", queue, enqueue_args(jobs))
        return [f == 1 for f in flags]

    # -- workers -----------------------------------------------------------------------------

    def _claim_args(self, n: int, worker: str, lease_ms: int, promote: int) -> list[Any]:
        return [n, worker, lease_ms, promote]

    @redis_errors
    async def claim(
        self, queue: str, n: int, worker: str, lease_ms: int, promote: int = 1000
    ) -> ClaimResult:
        raw = await self._run("claim", queue, self._claim_args(n, worker, lease_ms, promote))
        return _parse_claim(raw)

    @redis_errors
    async def complete(self, queue: str, done: Sequence[tuple[str, str, str]]) -> list[bool]:
        args: list[Any] = [len(done)]
        for item in done:
            args.extend(item)
        return [int(f) == 1 for f in await self._run("complete", queue, args)]

    @redis_errors
    async def complete_and_claim(
        self,
        queue: str,
        done: Sequence[tuple[str, str, str]],
        n: int,
        worker: str,
        lease_ms: int,
    ) -> tuple[list[bool], ClaimResult | None]:
        """Acknowledge finished jobs and lease new ones in a single round trip."""
        k = self.keys(queue)
        calls: list[tuple[str, list[str], list[Any]]] = []
        if done:
            args: list[Any] = [k.base, len(done)]
            for item in done:
                args.extend(item)
            calls.append(("complete", [k.meta], args))
        if n > 0:
            claim_args = self._claim_args(n, worker, lease_ms, 1000)
            calls.append(("claim", [k.meta], [k.base, *claim_args]))
        if not calls:
            return [], None
        try:
            results = await self.runner.run_pipeline(self.fast, calls)
        except (RedisError, OSError) as exc:
            raise corral_error(exc, self.where) from exc
        flags = [int(f) == 1 for f in results[0]] if done else []
        claim = _parse_claim(results[-1]) if n > 0 else None
        return flags, claim

    @redis_errors
    async def fail(
        self,
        queue: str,
        job_id: str,
        token: str,
        error_json: str,
        *,
        retry_delay_ms: int | None,
        reason: str = "",
    ) -> bool:
        action = "dead" if retry_delay_ms is None else "retry"
        args = [job_id, token, error_json, action, retry_delay_ms or 0, reason]
        return int(await self._run("fail", queue, args)) == 1

    @redis_errors
    async def reschedule(
        self, queue: str, job_id: str, token: str, delay_ms: int, message: str, hold_ms: int = 0
    ) -> int:
        args = [job_id, token, delay_ms, message, hold_ms]
        return int(await self._run("reschedule", queue, args))

    @redis_errors
    async def defer(
        self, queue: str, job_id: str, token: str, delay_ms: int, grace_ms: int, error_json: str
    ) -> int:
        """Hand back a job whose name this worker does not know: 1 handed back, 2 dead (its
        grace is over, or it was cancelled), 0 refused (stale token)."""
        args = [job_id, token, delay_ms, grace_ms, error_json]
        return int(await self._run("defer", queue, args))

    @redis_errors
    async def eviction_policy(self) -> str | None:
        """The server's maxmemory-policy (None when the server will not say)."""
        try:
            reply = await self.client.config_get("maxmemory-policy")
            return str(reply.get("maxmemory-policy")) if reply else None
        except RedisError:  # CONFIG is often disabled on managed servers; INFO is not
            info = await self.client.info("memory")
            policy = info.get("maxmemory_policy")
            return None if policy is None else str(policy)

    # -- groups --------------------------------------------------------------------------------

    @redis_errors
    async def group_action(
        self,
        queue: str,
        action: str,
        group: str,
        *,
        concurrency: str = "",
        rate: str = "",
        weight: str = "",
    ) -> bool:
        """pause / resume / limits of one group ('' keeps a setting, '-' removes it)."""
        args = [action, group, concurrency, rate, weight]
        return int(await self._run("groups", queue, args)) == 1

    @redis_errors
    async def refresh_groups(self, queue: str) -> int:
        """After queue-wide limits changed: groups now under their limits are served again."""
        cursor, total = 0, 0
        while True:
            cursor, names = await self.scan_groups(queue, cursor, 500)
            if names:
                total += int(await self._run("groups", queue, ["refresh", *names]))
            if cursor == 0:
                return total

    @redis_errors
    async def group_states(self, queue: str, groups: Sequence[str]) -> list[dict[str, Any]]:
        """Waiting/active counts and flags of the given groups, in one round trip."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hget(k.meta, "gconc")
        for g in groups:
            pipe.zcard(k.waiting(g))
            pipe.hget(k.gactive, g)
            pipe.sismember(k.base + "gpaused", g)
            pipe.zscore(k.base + "limited", g)
            pipe.zscore(k.ready, g)
            pipe.hget(k.base + "glimit", g)
            pipe.hget(k.base + "grate", g)
            pipe.hget(k.base + "gweight", g)
        queue_limit, *raw = await pipe.execute()
        out = []
        for i, g in enumerate(groups):
            waiting, active, paused, limited, ready, limit, rate, weight = raw[i * 8 : i * 8 + 8]
            if limit is None and int(queue_limit or 0) > 0:
                limit = queue_limit  # the queue-wide default applies to this group
            out.append(
                {
                    "group": g,
                    "waiting": int(waiting),
                    "active": int(active or 0),
                    "paused": bool(paused),
                    "limited_until_ms": None if limited is None else int(limited),
                    "ready": ready is not None,
                    "concurrency": None if limit is None else int(limit),
                    "rate": rate,
                    "weight": None if weight is None else float(weight),
                }
            )
        return out

    @redis_errors
    async def scan_groups(
        self, queue: str, cursor: int = 0, count: int = 100
    ) -> tuple[int, list[str]]:
        """One page of the queue's known groups (those with waiting or running jobs)."""
        nxt, names = await self.client.sscan(self.keys(queue).base + "groups", cursor, count=count)
        return int(nxt), sorted(cast(list[str], names))

    @redis_errors
    async def release(self, queue: str, items: Sequence[tuple[str, str]]) -> int:
        args: list[Any] = [len(items)]
        for item in items:
            args.extend(item)
        return int(await self._run("release", queue, args))

    @redis_errors
    async def heartbeat(
        self, queue: str, lease_ms: int, items: Sequence[tuple[str, str]]
    ) -> tuple[list[str], list[str]]:
        """Extend leases; returns (ids whose lease is lost, ids whose cancellation was asked)."""
        args: list[Any] = [lease_ms, len(items)]
        for item in items:
            args.extend(item)
        lost, cancel = await self._run("heartbeat", queue, args)
        return list(lost), list(cancel)

    @redis_errors
    async def reap(self, queue: str, limit: int = 500) -> tuple[int, int]:
        requeued, dead = await self._run("reap", queue, [limit])
        return int(requeued), int(dead)

    @redis_errors
    async def touch(
        self,
        queue: str,
        job_id: str,
        token: str,
        *,
        progress_json: str = "",
        log_line: str = "",
        max_log_lines: int = 1000,
    ) -> bool:
        args = [job_id, token, progress_json, log_line, max_log_lines]
        return int(await self._run("touch", queue, args)) == 1

    @redis_errors
    async def wait_marker(self, queue: str, timeout_s: float) -> bool:
        """Block until a producer or a transition signals new work (or the timeout)."""
        got = await self.client.bzpopmin(self.keys(queue).marker, timeout=timeout_s)
        return got is not None

    @redis_errors
    async def signal(self, queue: str) -> None:
        """Re-post a wake-up marker this worker consumed but could not use."""
        await self.client.zadd(self.keys(queue).marker, {"m": 0})

    # -- readers -----------------------------------------------------------------------------

    @redis_errors
    async def watch(self, queue: str, job_id: str) -> str | None:
        state = await self._run("watch", queue, [job_id])
        return state or None

    @redis_errors
    async def wait_done(self, queue: str, job_id: str, timeout_s: float) -> bool:
        got = await self.client.blpop([self.keys(queue).done(job_id)], timeout=timeout_s)
        return got is not None

    @redis_errors
    async def get_job(self, queue: str, job_id: str) -> dict[str, str] | None:
        """The job hash, with its payload (kept in its own key) as field ``d``."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(k.job(job_id))
        pipe.get(k.payload(job_id))
        raw, payload = await pipe.execute()
        if not raw:
            return None
        if payload is not None:
            raw["d"] = payload
        return cast(dict[str, str], raw)

    @redis_errors
    async def job_field(self, queue: str, job_id: str, field: str) -> str | None:
        return cast(str | None, await self.client.hget(self.keys(queue).job(job_id), field))

    @redis_errors
    async def job_logs(self, queue: str, job_id: str, start: int = 0, end: int = -1) -> list[str]:
        return cast(list[str], await self.client.lrange(self.keys(queue).log(job_id), start, end))

    @redis_errors
    async def counts(self, queue: str) -> dict[str, int]:
        """Jobs per state and the queue's flags, in one round trip."""
        k = self.keys(queue)
        pipe = self.client.pipeline(transaction=False)
        pipe.hmget(k.meta, ["waiting", "paused", "completed_trimmed", "dead_trimmed"])
        for key in (k.delayed, k.active, k.completed, k.dead):
            pipe.zcard(key)
        meta, delayed, active, completed, dead = await pipe.execute()
        return {
            "waiting": int(meta[0] or 0),
            "delayed": int(delayed),
            "active": int(active),
            "completed": int(completed),
            "dead": int(dead),
            "paused": int(meta[1] or 0),
            "completed_trimmed": int(meta[2] or 0),
            "dead_trimmed": int(meta[3] or 0),
        }

    @redis_errors
    async def queues(self) -> list[str]:
        names = cast(set[str], await self.client.smembers(registry_key(self.prefix)))
        return sorted(names)

    @redis_errors
    async def queue_exists(self, queue: str) -> bool:
        return bool(await self.client.sismember(registry_key(self.prefix), queue))

    @redis_errors
    async def set_paused(self, queue: str, paused: bool) -> None:
        k = self.keys(queue)
        if paused:
            await self.client.hset(k.meta, "paused", "1")
        else:
            await self.client.hdel(k.meta, "paused")
            await self.signal(queue)

    @redis_errors
    async def configure(self, queue: str, **limits: int) -> None:
        """Queue-wide settings: retention (completed_age, completed_max, dead_age, dead_max) and
        limits (gconc: running jobs per group; grate_n/grate_w: starts per window per group;
        rate_n/rate_w: starts per window for the queue; 0 removes a limit) and ev (1: record
        every transition in the capped events stream)."""
        allowed = {
            "completed_age",
            "completed_max",
            "dead_age",
            "dead_max",
            "gconc",
            "grate_n",
            "grate_w",
            "rate_n",
            "rate_w",
            "ev",
        }
        unknown = set(limits) - allowed
        if unknown:
            raise ValueError(f"unknown queue setting(s): {sorted(unknown)}")
        await self.register_queue(queue)
        await self.client.hset(self.keys(queue).meta, mapping=dict(limits))  # type: ignore[arg-type]

    @redis_errors
    async def ids_in(self, queue: str, state: str, start: int = 0, end: int = -1) -> list[str]:
        k = self.keys(queue)
        key = {"delayed": k.delayed, "active": k.active, "completed": k.completed, "dead": k.dead}
        if state not in key:
            raise ValueError(f"cannot list state {state!r} by index")
        return cast(list[str], await self.client.zrange(key[state], start, end))
