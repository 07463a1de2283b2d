"""App: the job registry and its client (settings and connections, one Redis client per loop)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import replace
from datetime import timedelta
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, overload

from corral.client import Client
from corral.codec import PayloadCodec
from corral.definition import (
    AsyncJobFunction,
    GroupSpec,
    JobDefinition,
    JobFunction,
    Mode,
    PreparedJob,
    SyncJobFunction,
    check_job_concurrency,
    enqueue_many,
    infer_mode,
)
from corral.engine import Engine
from corral.engine.keys import check_queue_name
from corral.errors import ConfigError
from corral.handle import JobHandle, get_job
from corral.hooks import Hooks, JobHook, WorkerHook, check_hook
from corral.models import JobInfo, WorkerInfo
from corral.options import JobOptions, check_group
from corral.portal import Portal
from corral.queue import Queue
from corral.retry import RetryPolicy, error_classes
from corral.settings import Settings

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
        if embedded is not None:
            settings = settings.replace(embedded=embedded)
        self.name = name
        self.client = Client(settings, name)
        self.registry: dict[str, JobFunction[Any, Any]] = {}
        self.hooks = Hooks()
        self._queue_defaults: dict[str, dict[str, Any]] = {}

    @classmethod
    def from_env(cls, **overrides: Any) -> App:
        return cls(Settings.from_env(**overrides))

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> App:
        return cls(Settings.from_url(url, **overrides))

    @property
    def settings(self) -> Settings:
        return self.client.settings

    @property
    def portal(self) -> Portal:
        return self.client.portal

    @property
    def redis_url(self) -> str:
        """The configured URL, or the shared server's (started if no process has yet)."""
        return self.client.redis_url

    def configure(self, settings: Settings | None = None, **overrides: Any) -> App:
        """Replace the settings before first use (e.g. a URL chosen at run time by a CLI or a
        test); refused once this App has connected."""
        base = settings or self.settings
        self.client.configure(base.replace(**overrides) if overrides else base)
        return self

    # -- registry ------------------------------------------------------------------------------

    def queue_defaults(
        self,
        queue: str,
        *,
        priority: int | None = None,
        timeout: timedelta | None = None,
        retry: RetryPolicy | None = None,
        max_reschedules: int | None = None,
        max_stalls: int | None = None,
        keep_completed: timedelta | None = None,
        keep_dead: timedelta | None = None,
    ) -> None:
        """Default options for every job registered on ``queue``: a job's own option (given
        to ``@app.job``) wins, option by option. Declare them before registering the queue's
        jobs (they are applied at registration, so later ones would miss earlier jobs), once
        per queue."""
        check_queue_name(queue)
        given = {
            "priority": priority,
            "timeout": timeout,
            "retry": retry,
            "max_reschedules": max_reschedules,
            "max_stalls": max_stalls,
            "keep_completed": keep_completed,
            "keep_dead": keep_dead,
        }
        defaults = {key: value for key, value in given.items() if value is not None}
        JobOptions().merged(**defaults)  # checked now, not at the first registration
        if queue in self._queue_defaults:
            raise ConfigError(f"the defaults of queue {queue!r} are declared already")
        registered = sorted(n for n, jf in self.registry.items() if jf.queue == queue)
        if registered:
            raise ConfigError(
                f"declare the defaults of queue {queue!r} before registering its jobs "
                f"(registered already: {', '.join(registered)})"
            )
        self._queue_defaults[queue] = defaults

    @overload
    def job(  # type: ignore[overload-overlap]  # an async def is a callable too: it goes first
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncJobFunction[P, R]: ...

    @overload
    def job(self, fn: Callable[P, R], /) -> SyncJobFunction[P, R]: ...

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
        retry_on: Iterable[type[BaseException]] | None = None,
        fatal_on: Iterable[type[BaseException]] | None = None,
        mode: Mode | None = None,
        concurrency: int | None = None,
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
        retry_on: Iterable[type[BaseException]] | None = None,
        fatal_on: Iterable[type[BaseException]] | None = None,
        mode: Mode | None = None,
        concurrency: int | None = None,
        **options: Any,
    ) -> Any:
        """Register a typed job. Options given here are the defaults for every enqueue (over
        the queue's, see ``queue_defaults``). ``retry_on`` / ``fatal_on`` classify errors as
        ``RetryPolicy`` does, on top of the policy that applies. ``concurrency``: at most this
        many of this job run at once in one worker process."""
        check_queue_name(queue)
        if group is not None and not callable(group):
            check_group(group)
        check_job_concurrency(concurrency)
        changes = dict(self._queue_defaults.get(queue, {}))
        changes.update(options)
        if priority is not None:
            changes["priority"] = priority
        if timeout is not None:
            changes["timeout"] = timeout
        if retry is not None:
            changes["retry"] = retry
        if retry_on is not None or fatal_on is not None:
            changes["retry"] = _classified(
                changes.get("retry"), retry is not None, retry_on, fatal_on
            )
        job_options = JobOptions().merged(**changes)

        def register(func: Callable[..., Any]) -> JobFunction[Any, Any]:
            job_name = name or func.__name__
            if not job_name or "\x00" in job_name:  # claim's reply separates fields with NUL
                raise ConfigError(f"a job name must be non-empty and hold no NUL: {job_name!r}")
            if job_name in self.registry:
                raise ConfigError(f"a job named {job_name!r} is already registered")
            job_mode = infer_mode(func, mode)
            definition = JobDefinition(
                fn=func,
                name=job_name,
                queue=queue,
                mode=job_mode,
                options=job_options,
                group=group,
                codec=PayloadCodec(func, job_name),
                concurrency=concurrency,
            )
            kind = AsyncJobFunction if job_mode == "async" else SyncJobFunction
            jf: JobFunction[Any, Any] = kind(definition, self.client)
            self.registry[job_name] = jf
            return jf

        return register if fn is None else register(fn)

    # -- lifecycle hooks (run by workers; see corral/hooks.py) -----------------------------------

    def on_complete(self, fn: JobHook) -> JobHook:
        """Call ``fn(event)`` in the worker once a job's completion is recorded."""
        check_hook(fn)
        self.hooks.on_complete.append(fn)
        return fn

    def on_failure(self, fn: JobHook) -> JobHook:
        """Call ``fn(event)`` for each failed attempt once recorded (``event.will_retry``)."""
        check_hook(fn)
        self.hooks.on_failure.append(fn)
        return fn

    def on_dead(self, fn: JobHook) -> JobHook:
        """Call ``fn(event)`` once a job is dead (in the dead-letter set)."""
        check_hook(fn)
        self.hooks.on_dead.append(fn)
        return fn

    def on_startup(self, fn: WorkerHook) -> WorkerHook:
        """Call ``fn()`` when a worker starts, before it claims a job (open pools here)."""
        check_hook(fn)
        self.hooks.on_startup.append(fn)
        return fn

    def on_shutdown(self, fn: WorkerHook) -> WorkerHook:
        """Call ``fn()`` when a worker stops, after its last outcome is recorded."""
        check_hook(fn)
        self.hooks.on_shutdown.append(fn)
        return fn

    def queues(self) -> list[str]:
        """Queues that registered jobs use, in first-use order."""
        return list(dict.fromkeys(jf.queue for jf in self.registry.values()))

    def queue(self, name: str = "default") -> Queue:
        return Queue(self.client, name, self.registry)

    # -- connections ---------------------------------------------------------------------------

    def current_engine(self) -> Engine | None:
        return self.client.current_engine()

    async def engine(self) -> Engine:
        """The Engine bound to the running event loop (created on first use)."""
        return await self.client.engine()

    async def connect(self) -> App:
        """Connect now and check the server answers (otherwise the first call does it)."""
        await (await self.client.engine()).ping()
        return self

    async def close(self) -> None:
        """Close this loop's connection (the shared server stays, for the other processes)."""
        await self.client.close()

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
        return await enqueue_many(self.client, jobs)

    def enqueue_many_sync(self, jobs: Sequence[PreparedJob[R]]) -> list[JobHandle[R]]:
        return self.client.portal.call(enqueue_many(self.client, jobs))

    def handle(self, queue: str, job_id: str) -> JobHandle[Any]:
        """A handle to an existing job by id (its result as plain JSON values)."""
        return JobHandle(self.client, queue, job_id, None)

    async def get_job(self, queue: str, job_id: str) -> JobInfo:
        return await get_job(self.client, queue, job_id)

    async def workers(self) -> list[WorkerInfo]:
        """The live workers on this server and key prefix, by id: those that sent a heartbeat
        within their last three heartbeat intervals (workers that exit remove themselves)."""
        return await (await self.client.engine()).workers()


def _classified(
    policy: RetryPolicy | None,
    own_policy: bool,
    retry_on: Iterable[type[BaseException]] | None,
    fatal_on: Iterable[type[BaseException]] | None,
) -> RetryPolicy:
    """``policy`` (the job's own, the queue's default, or none) with ``@app.job``'s
    ``retry_on`` / ``fatal_on``; a job's own policy must not say otherwise."""
    base = policy or RetryPolicy()
    changes: dict[str, Any] = {}
    for name, value, own in (
        ("retry_on", retry_on, base.retry_on),
        ("fatal_on", fatal_on, base.fatal_on),
    ):
        if value is None:
            continue
        if own and own_policy and own != error_classes(name, value):
            raise ConfigError(f"{name} is given twice: to @app.job and in its RetryPolicy")
        changes[name] = error_classes(name, value)
    return replace(base, **changes)


class _JobDecorator:
    """Typing helper: what ``@app.job(...)`` returns."""

    @overload
    def __call__(  # type: ignore[overload-overlap]  # async first, as in App.job
        self, fn: Callable[P, Coroutine[Any, Any, R]], /
    ) -> AsyncJobFunction[P, R]: ...

    @overload
    def __call__(self, fn: Callable[P, R], /) -> SyncJobFunction[P, R]: ...

    def __call__(self, fn: Callable[..., Any], /) -> Any:
        raise NotImplementedError
