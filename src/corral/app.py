"""App: settings, the job registry, and connections (one Redis client per event loop)."""

from __future__ import annotations

import asyncio
import logging
import threading
import weakref
from collections.abc import Awaitable, Callable, Sequence
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, overload

from corral.codec import from_json
from corral.engine import Engine
from corral.engine.connection import make_client
from corral.engine.keys import check_queue_name
from corral.engine.probe import probe
from corral.engine.transport import Transport
from corral.errors import ConfigError, JobNotFound
from corral.filters import int_field
from corral.job import ErrorRecord, JobInfo, JobOptions, JobState, Priority, check_group
from corral.jobs import GroupSpec, JobFunction, JobHandle, Mode, PreparedJob, infer_mode
from corral.portal import Portal
from corral.retry import RetryPolicy
from corral.schedule import from_epoch_ms
from corral.settings import EMBEDDED_REFUSED, Settings, parse_redis_url

if TYPE_CHECKING:
    from corral.queue import Queue

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


class App:
    """The entry point: ``app = App.from_env()``, then ``@app.job(...)`` and ``async with app``.

    With no Redis URL configured, it uses the project's shared server (``corral.devserver``),
    started by whichever process needs it first and shared by all of them; ``embedded=False``
    (or ``CORRAL_EMBEDDED=0``) refuses that, so a missing URL fails at connect time."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        name: str = "corral",
        embedded: bool | None = None,
    ) -> None:
        settings = settings or Settings()
        self.settings = settings if embedded is None else settings.replace(embedded=embedded)
        self.name = name
        self.registry: dict[str, JobFunction[Any, Any]] = {}
        self.portal = Portal(f"{name}-portal")
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Engine] = (
            weakref.WeakKeyDictionary()
        )
        self._shared_url: str | None = None
        self._lock = threading.Lock()
        self._recent: tuple[weakref.ref[asyncio.AbstractEventLoop], Engine] | None = None

    @classmethod
    def from_env(cls, **overrides: Any) -> App:
        return cls(Settings.from_env(**overrides))

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> App:
        return cls(Settings.from_url(url, **overrides))

    def configure(self, settings: Settings | None = None, **overrides: Any) -> App:
        """Replace the settings before first use (e.g. a URL chosen at run time by a CLI or a
        test); refused once this App has connected."""
        if self._engines or self._shared_url is not None:
            raise ConfigError("configure() must be called before the App connects")
        base = settings or self.settings
        self.settings = base.replace(**overrides) if overrides else base
        return self

    # -- registry ------------------------------------------------------------------------------

    @overload
    def job(self, fn: Callable[P, Awaitable[R]], /) -> JobFunction[P, R]: ...

    @overload
    def job(self, fn: Callable[P, R], /) -> JobFunction[P, R]: ...

    @overload
    def job(
        self,
        fn: None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int | None = None,
        group: GroupSpec = None,
        timeout: timedelta | None = None,
        retry: RetryPolicy | None = None,
        mode: Mode | None = None,
        **options: Any,
    ) -> _JobDecorator: ...

    def job(
        self,
        fn: Callable[..., Any] | None = None,
        /,
        *,
        name: str | None = None,
        queue: str = "default",
        priority: int | None = None,
        group: GroupSpec = None,
        timeout: timedelta | None = None,
        retry: RetryPolicy | None = None,
        mode: Mode | None = None,
        **options: Any,
    ) -> Any:
        """Register a typed job. Options given here are the defaults for every enqueue."""
        check_queue_name(queue)
        if group is not None and not callable(group):
            check_group(group)
        changes = dict(options)
        if priority is not None:
            changes["priority"] = priority
        if timeout is not None:
            changes["timeout"] = timeout
        if retry is not None:
            changes["retry"] = retry
        job_options = JobOptions().merged(**changes)

        def register(func: Callable[..., Any]) -> JobFunction[Any, Any]:
            job_name = name or func.__name__
            if not job_name or "\x00" in job_name:  # claim's reply separates fields with NUL
                raise ConfigError(f"a job name must be non-empty and hold no NUL: {job_name!r}")
            if job_name in self.registry:
                raise ConfigError(f"a job named {job_name!r} is already registered")
            jf: JobFunction[Any, Any] = JobFunction(
                self,
                func,
                name=job_name,
                queue=queue,
                options=job_options,
                group=group,
                mode=infer_mode(func, mode),
            )
            self.registry[job_name] = jf
            return jf

        return register if fn is None else register(fn)

    def queues(self) -> list[str]:
        """Queues that registered jobs use, in first-use order."""
        return list(dict.fromkeys(jf.queue for jf in self.registry.values()))

    def queue(self, name: str = "default") -> Queue:
        from corral.queue import Queue

        return Queue(self, name)

    # -- connections ---------------------------------------------------------------------------

    @property
    def redis_url(self) -> str:
        """The configured URL, or the shared server's (started if no process has yet).
        Raises ConfigError when there is no URL and the embedded server is refused."""
        if self.settings.redis_url:
            return self.settings.redis_url
        if not self.settings.embedded:
            raise ConfigError(EMBEDDED_REFUSED)
        with self._lock:
            if self._shared_url is None:
                from corral.devserver import shared_url  # POSIX-only (flock), needed only here

                self._shared_url = shared_url()
            return self._shared_url

    def current_engine(self) -> Engine | None:
        """The running loop's Engine if it exists already: ``engine()`` without a coroutine,
        for the hot path (the last loop's is remembered, so no weak-dict lookup either)."""
        loop = asyncio.get_running_loop()
        recent = self._recent
        if recent is not None and recent[0]() is loop:
            return recent[1]
        engine = self._engines.get(loop)
        if engine is not None:
            self._recent = (weakref.ref(loop), engine)
        return engine

    async def engine(self) -> Engine:
        """The Engine bound to the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        engine = self._engines.get(loop)
        if engine is None:
            url = (
                self.redis_url
                if self.settings.redis_url
                else await asyncio.to_thread(lambda: self.redis_url)
            )
            engine = self._engines.get(loop)  # another coroutine may have made it meanwhile
            if engine is not None:
                return engine
            target = parse_redis_url(url)
            # one PING first: a wrong URL fails here, at once and in one line
            await probe(target, retries=self.settings.connect_retries, name=self.name)
            engine = self._engines.get(loop)
            if engine is not None:
                return engine
            engine = Engine(
                make_client(target, retries=self.settings.connect_retries, name=self.name),
                self.settings.prefix,
                Transport(target, name=self.name, retries=self.settings.connect_retries),
                where=target.redacted,
            )
            self._engines[loop] = engine
        return engine

    async def connect(self) -> App:
        """Connect now and check the server answers (otherwise the first call does it)."""
        engine = await self.engine()
        await engine.ping()
        return self

    async def close(self) -> None:
        """Close this loop's connection (the shared server stays, for the other processes)."""
        loop = asyncio.get_running_loop()
        engine = self._engines.pop(loop, None)
        self._recent = None
        if engine is not None:
            await engine.close()
        # The sync API's connection lives on the portal's loop: close it there, or the portal
        # thread and its connection would outlive this App.
        portal_loop = self.portal.loop
        portal_engine = None if portal_loop is None else self._engines.pop(portal_loop, None)
        if portal_engine is not None and portal_loop is not None and portal_loop is not loop:
            closing = asyncio.run_coroutine_threadsafe(portal_engine.close(), portal_loop)
            await asyncio.wrap_future(closing)
        if not self._engines:
            self.portal.stop()

    async def __aenter__(self) -> App:
        return await self.connect()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- producer and reader API ---------------------------------------------------------------

    async def enqueue_many(self, jobs: Sequence[PreparedJob[R]]) -> list[JobHandle[R]]:
        """Store prepared jobs of one queue atomically: all of them or none."""
        if not jobs:
            return []
        queues = {p.queue for p in jobs}
        if len(queues) > 1:
            raise ConfigError(f"enqueue_many is atomic per queue; got several: {sorted(queues)}")
        queue = jobs[0].queue
        engine = self.current_engine() or await self.engine()
        flags = await engine.enqueue(queue, [p.new for p in jobs])
        return [
            JobHandle(self, queue, p.new.id, p.function.codec, created)
            for p, created in zip(jobs, flags, strict=True)
        ]

    def enqueue_many_sync(self, jobs: Sequence[PreparedJob[R]]) -> list[JobHandle[R]]:
        return self.portal.call(self.enqueue_many(jobs))

    def handle(self, queue: str, job_id: str) -> JobHandle[Any]:
        """A handle to an existing job by id (its result decoded by the registered job's type)."""
        return JobHandle(self, queue, job_id, None)

    async def get_job(self, queue: str, job_id: str) -> JobInfo:
        engine = await self.engine()
        raw = await engine.get_job(queue, job_id)
        if raw is None:
            raise JobNotFound(f"no job {job_id} in queue {queue!r}")
        return job_info(queue, job_id, raw)


def job_info(queue: str, job_id: str, raw: dict[str, str]) -> JobInfo:
    """Build the read model from a job hash (tolerates missing fields of malformed jobs)."""
    errors = [
        ErrorRecord(
            attempt=int_field(e.get("attempt"), 0),
            type=str(e.get("type", "")),
            message=str(e.get("message", "")),
            traceback=str(e.get("traceback", "")),
            at=from_epoch_ms(e.get("at")),
            worker=e.get("worker"),
        )
        for e in from_json(raw.get("eh"), [])
        if isinstance(e, dict)
    ]
    try:
        state = JobState(raw.get("st", "waiting"))
    except ValueError:
        state = JobState.WAITING
    return JobInfo(
        id=job_id,
        queue=queue,
        name=raw.get("n", ""),
        state=state,
        payload=from_json(raw.get("d")),
        group=raw.get("g") or None,
        priority=int_field(raw.get("p"), Priority.NORMAL),  # the default is not stored
        attempt=int_field(raw.get("a"), 0),
        max_attempts=int_field(raw.get("ma"), 1),
        created_at=from_epoch_ms(raw.get("ct")),
        started_at=from_epoch_ms(raw.get("sa")),
        finished_at=from_epoch_ms(raw.get("fa")),
        progress=from_json(raw.get("pg")),
        result=from_json(raw.get("r")),
        errors=errors,
        dead_reason=raw.get("dr"),
        worker=raw.get("wk"),
        reschedules=int_field(raw.get("rs"), 0),
        stalls=int_field(raw.get("sl"), 0),
        options=from_json(raw.get("o"), {}),
        cancellation=from_json(raw.get("cx")),
        replays=from_json(raw.get("rp"), []),
    )


class _JobDecorator:
    """Typing helper: what ``@app.job(...)`` returns."""

    @overload
    def __call__(self, fn: Callable[P, Awaitable[R]], /) -> JobFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> JobFunction[P, R]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any:
        raise NotImplementedError
