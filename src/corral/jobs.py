"""``@app.job``: typed job functions, per-call options, and handles to enqueued jobs."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Generic, Literal, ParamSpec, TypeVar

from corral.codec import PayloadCodec, to_json
from corral.engine import JobSpec, NewJob
from corral.errors import ConfigError, JobFailed, JobNotFound, PayloadError, ResultTimeout
from corral.ids import new_job_id
from corral.job import JobInfo, JobOptions, JobState, check_group
from corral.schedule import due_in_ms, to_ms

if TYPE_CHECKING:
    from corral.app import App

P = ParamSpec("P")
R = TypeVar("R")
Mode = Literal["async", "thread", "process"]
GroupSpec = str | Callable[..., str] | None


@dataclass(slots=True)  # not frozen: one per enqueued job, and frozen costs 1 µs more each
class PreparedJob(Generic[R]):
    """A validated, serialised job not yet stored; pass a list to ``app.enqueue_many``."""

    function: JobFunction[Any, R]
    queue: str
    new: NewJob


class JobHandle(Generic[R]):
    """A reference to an enqueued job. ``created`` is False when ``job_id`` matched an
    existing job and nothing new was stored."""

    __slots__ = ("_codec", "app", "created", "id", "queue")

    def __init__(
        self, app: App, queue: str, job_id: str, codec: PayloadCodec | None, created: bool = True
    ) -> None:
        self.app = app
        self.queue = queue
        self.id = job_id
        self.created = created
        self._codec = codec

    def __repr__(self) -> str:
        return f"JobHandle(queue={self.queue!r}, id={self.id!r}, created={self.created})"

    async def info(self) -> JobInfo:
        return await self.app.get_job(self.queue, self.id)

    async def state(self) -> JobState:
        return (await self.info()).state

    async def progress(self) -> Any:
        return (await self.info()).progress

    async def logs(self) -> list[str]:
        engine = await self.app.engine()
        return await engine.job_logs(self.queue, self.id)

    async def result(self, timeout: timedelta | float | None = None) -> R:
        """Wait (without polling) until the job ends; its result, or JobFailed if it died."""
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        engine = await self.app.engine()
        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while True:
            state = await engine.watch(self.queue, self.id)
            if state is None:
                raise JobNotFound(f"no job {self.id} in queue {self.queue!r}")
            if state in (JobState.COMPLETED, JobState.DEAD, JobState.CANCELLED):
                info = await self.info()
                if info.state != JobState.COMPLETED:
                    err = info.last_error
                    raise JobFailed(
                        self.id,
                        info.dead_reason or "dead",
                        err.type if err else None,
                        err.message if err else None,
                    )
                raw = await engine.job_field(self.queue, self.id, "r")
                if self._codec is None:
                    from corral.codec import from_json

                    return from_json(raw)  # type: ignore[no-any-return]
                return self._codec.load_result(raw)  # type: ignore[no-any-return]
            wait = 5.0
            if deadline is not None:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise ResultTimeout(f"job {self.id} still {state} after {seconds:g}s")
                wait = min(wait, remaining)
            await engine.wait_done(self.queue, self.id, max(wait, 0.01))

    def result_sync(self, timeout: timedelta | float | None = None) -> R:
        return self.app.portal.call(self.result(timeout))


class JobFunction(Generic[P, R]):
    """A registered job. Call it directly to run the function in-process; ``enqueue`` to run it
    on a worker. ``with_options`` returns a copy with different per-call options."""

    def __init__(
        self,
        app: App,
        fn: Callable[P, Awaitable[R]] | Callable[P, R],
        *,
        name: str,
        queue: str,
        options: JobOptions,
        group: GroupSpec,
        mode: Mode,
    ) -> None:
        self.app = app
        self.fn = fn
        self.name = name
        self.queue = queue
        self.options = options
        self.group_spec = group
        self.mode = mode
        self.codec = PayloadCodec(fn, name)
        self._options_json = ""  # the worker reads the definition's own options
        self._derive()
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __repr__(self) -> str:
        return f"JobFunction({self.name!r}, queue={self.queue!r}, mode={self.mode!r})"

    def _derive(self) -> None:
        """What enqueue and the worker read per job, made once per set of options."""
        self._spec = job_spec(self.name, self.options, self._options_json)
        timeout = self.options.timeout
        self.timeout_s = None if timeout is None else timeout.total_seconds()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Awaitable[R] | R:
        return self.fn(*args, **kwargs)

    def with_options(self, **changes: Any) -> JobFunction[P, R]:
        """Same job, other options: priority, delay, run_at, job_id, group, timeout, retry, ..."""
        queue = changes.pop("queue", self.queue)
        group: GroupSpec = self.group_spec
        if "group" in changes:
            group = changes.pop("group")
            if group is not None and not callable(group):
                check_group(group)
        clone: JobFunction[P, R] = object.__new__(JobFunction)
        clone.__dict__.update(self.__dict__)
        clone.queue = queue
        clone.group_spec = group
        clone.options = self.options.merged(**changes)
        defined = self.app.registry.get(self.name, self).options
        same = (clone.options.retry, clone.options.timeout) == (defined.retry, defined.timeout)
        # stored with each job only when they differ from the definition's (memory per job)
        clone._options_json = "" if same else options_json(clone.options)
        clone._derive()
        return clone

    def _group_for(self, model: Any) -> str:
        spec = self.group_spec if self.options.group is None else self.options.group
        if spec is None:
            return ""
        if callable(spec):
            first = getattr(model, self.codec.names[0]) if self.codec.names else None
            try:
                value = spec(first)
            except Exception as exc:
                raise PayloadError(
                    f"group function of job {self.name!r} raised {type(exc).__name__}: {exc}"
                ) from exc
            try:
                return check_group(value)
            except ConfigError as exc:
                raise PayloadError(f"group function of job {self.name!r}: {exc}") from None
        return spec

    def prepare(self, *args: P.args, **kwargs: P.kwargs) -> PreparedJob[R]:
        """Validate and serialise one call without storing it (for ``app.enqueue_many``)."""
        return PreparedJob(self, self.queue, self._new_job(args, kwargs))

    def _new_job(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> NewJob:
        model = self.codec.bind(args, kwargs)
        payload = self.codec.dumps(model)
        limit = self.app.settings.max_payload_bytes
        # characters bound the UTF-8 size from below and a quarter of it from above: encode
        # (a copy of the payload) only when the bounds cannot decide
        size = len(payload) if len(payload) * 4 <= limit else len(payload.encode())
        if size > limit:
            raise PayloadError(
                f"payload of job {self.name!r} is {size} bytes, over the limit of {limit} bytes "
                "(store large data elsewhere and pass a reference)"
            )
        opts = self.options
        timed = opts.delay is not None or opts.run_at is not None
        delay = due_in_ms(opts.delay, opts.run_at) if timed else 0
        return NewJob(
            opts.job_id or new_job_id(), payload, self._group_for(model), delay, self._spec
        )

    async def enqueue(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """Validate, store, and return a handle. Raises PayloadError before touching Redis."""
        new = self._new_job(args, kwargs)
        engine = self.app.current_engine() or await self.app.engine()
        (created,) = await engine.enqueue(self.queue, (new,))
        return JobHandle(self.app, self.queue, new.id, self.codec, created)

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """``enqueue`` for sync code (Flask, Django views, scripts)."""
        prepared = self.prepare(*args, **kwargs)
        (handle,) = self.app.portal.call(self.app.enqueue_many([prepared]))
        return handle

    async def enqueue_many(self, calls: Sequence[PreparedJob[R]]) -> list[JobHandle[R]]:
        return await self.app.enqueue_many(calls)


def job_spec(name: str, opts: JobOptions, options: str) -> JobSpec:
    """What every job enqueued with these options shares (computed once, not per enqueue)."""
    return JobSpec(
        name=name,
        priority=int(opts.priority),
        max_attempts=opts.retry.attempts,
        options_json=options,
        max_stalls=opts.max_stalls,
        max_reschedules=opts.max_reschedules,
        keep_completed_ms=-1 if opts.keep_completed is None else to_ms(opts.keep_completed),
        keep_dead_ms=-1 if opts.keep_dead is None else to_ms(opts.keep_dead),
    )


def options_json(opts: JobOptions) -> str:
    """What the worker needs of the options, stored with each job (computed once per
    definition, not per enqueue)."""
    extra: dict[str, Any] = {"b": opts.retry.backoff.spec()}
    if opts.timeout is not None:
        extra["t"] = to_ms(opts.timeout)
    return to_json(extra)


def infer_mode(fn: Callable[..., Any], mode: Mode | None) -> Mode:
    is_async = inspect.iscoroutinefunction(fn)
    if mode is None:
        return "async" if is_async else "thread"
    if mode not in ("async", "thread", "process"):
        raise ConfigError(f"mode must be 'async', 'thread' or 'process', got {mode!r}")
    if mode == "async" and not is_async:
        raise ConfigError(f"{fn.__name__}: mode='async' needs an `async def` function")
    if mode in ("thread", "process") and is_async:
        raise ConfigError(f"{fn.__name__}: mode={mode!r} needs a plain (sync) function")
    if mode == "process" and ("<locals>" in fn.__qualname__ or fn.__module__ == "__main__"):
        raise ConfigError(
            f"{fn.__name__}: mode='process' needs a module-level function in an importable module"
        )
    return mode
