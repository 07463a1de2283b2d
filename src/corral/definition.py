"""``@app.job``: a job's frozen definition, and the typed function that enqueues it.

A :class:`JobDefinition` is what the decorator registered: the function, its codec, mode and
default options, and what is derived from them once (the timeout, the spec every enqueue
shares). A :class:`JobFunction` is a definition bound to a client and to one set of per-call
options; ``with_options(...)`` makes another, checked by the type checker keyword by keyword.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, Generic, Literal, ParamSpec, Self, TypeVar

from corral.client import Client
from corral.codec import PayloadCodec
from corral.engine import JobSpec, NewJob
from corral.engine.keys import check_queue_name
from corral.errors import ConfigError, PayloadError
from corral.handle import JobHandle
from corral.ids import new_job_id
from corral.models import JobOverrides
from corral.options import JobOptions, check_group
from corral.retry import Custom, RetryPolicy
from corral.timing import due_in_ms, to_ms

P = ParamSpec("P")
R = TypeVar("R")
Mode = Literal["async", "thread", "process"]
GroupFn = Callable[[Any], str]
GroupSpec = str | GroupFn | None


class _Unset(Enum):
    UNSET = 0


UNSET = _Unset.UNSET
"""``with_options``: an option not given (where None has a meaning of its own)."""


@dataclass(frozen=True, slots=True, eq=False)
class JobDefinition:
    """What ``@app.job`` registered; fixed for the life of the App."""

    fn: Callable[..., Any]
    name: str
    queue: str
    mode: Mode
    options: JobOptions  # the defaults of every enqueue
    group: GroupSpec
    codec: PayloadCodec
    concurrency: int | None = None  # at most this many at once in one worker process
    timeout_s: float | None = field(init=False)  # read for every job a worker runs

    def __post_init__(self) -> None:
        timeout = self.options.timeout
        object.__setattr__(self, "timeout_s", None if timeout is None else timeout.total_seconds())

    def spec(self, options: JobOptions) -> JobSpec:
        """What every job enqueued with ``options`` shares (made once per set of options).
        A job carries its timeout and backoff only when they differ from the definition's."""
        own = options.retry != self.options.retry or options.timeout != self.options.timeout
        overrides = None
        if own:
            backoff = options.retry.backoff
            overrides = JobOverrides(
                timeout=options.timeout, backoff=None if isinstance(backoff, Custom) else backoff
            )
        return JobSpec(
            name=self.name,
            priority=int(options.priority),
            max_attempts=options.retry.attempts,
            overrides=overrides,
            max_stalls=options.max_stalls,
            max_reschedules=options.max_reschedules,
            keep_completed_ms=-1
            if options.keep_completed is None
            else to_ms(options.keep_completed),
            keep_dead_ms=-1 if options.keep_dead is None else to_ms(options.keep_dead),
        )


def check_job_concurrency(value: int | None, what: str = "concurrency") -> int | None:
    if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
        raise ConfigError(f"{what} must be a whole number of at least 1, got {value!r}")
    return value


@dataclass(slots=True)  # not frozen: one per enqueued job, and frozen costs 1 µs more each
class PreparedJob(Generic[R]):
    """A validated, serialised job not yet stored; pass a list to ``app.enqueue_many``."""

    function: JobFunction[Any, R]
    queue: str
    new: NewJob


class JobFunction(Generic[P, R]):
    """A registered job bound to per-call options. ``enqueue`` runs it on a worker;
    ``with_options`` returns another with different options; calling it runs the function
    in-process (``AsyncJobFunction`` / ``SyncJobFunction`` give the exact return type)."""

    def __init__(
        self,
        definition: JobDefinition,
        client: Client,
        *,
        options: JobOptions | None = None,
        queue: str | None = None,
        group: GroupSpec | _Unset = UNSET,
    ) -> None:
        self.definition = definition
        self.client = client
        self.options = definition.options if options is None else options
        self.queue = definition.queue if queue is None else queue
        self.group_spec: GroupSpec = definition.group if group is UNSET else group
        self._spec = definition.spec(self.options)
        self.__doc__ = definition.fn.__doc__
        self.__wrapped__ = definition.fn

    @property
    def name(self) -> str:
        return self.definition.name

    @property
    def fn(self) -> Callable[..., Any]:
        return self.definition.fn

    @property
    def mode(self) -> Mode:
        return self.definition.mode

    @property
    def codec(self) -> PayloadCodec:
        return self.definition.codec

    def __repr__(self) -> str:
        return f"JobFunction({self.name!r}, queue={self.queue!r}, mode={self.mode!r})"

    def with_options(
        self,
        *,
        queue: str | None = None,
        priority: int | None = None,
        delay: timedelta | None = None,
        run_at: datetime | None = None,
        job_id: str | None = None,
        group: GroupSpec | _Unset = UNSET,
        timeout: timedelta | _Unset | None = UNSET,
        retry: RetryPolicy | None = None,
        max_reschedules: int | None = None,
        max_stalls: int | None = None,
        keep_completed: timedelta | _Unset | None = UNSET,
        keep_dead: timedelta | _Unset | None = UNSET,
    ) -> Self:
        """The same job with other per-call options (those not given stay as they are);
        ``group=None`` and ``timeout=None`` mean none at all."""
        changes: dict[str, Any] = {}
        for key, value in (
            ("priority", priority),
            ("delay", delay),
            ("run_at", run_at),
            ("job_id", job_id),
            ("retry", retry),
            ("max_reschedules", max_reschedules),
            ("max_stalls", max_stalls),
        ):
            if value is not None:
                changes[key] = value
        for key, maybe in (
            ("timeout", timeout),
            ("keep_completed", keep_completed),
            ("keep_dead", keep_dead),
        ):
            if maybe is not UNSET:
                changes[key] = maybe
        if isinstance(group, str):
            check_group(group)
        if queue is not None:
            check_queue_name(queue)
        if retry is not None:
            self._check_classification(retry)
        options = self.options.merged(**changes) if changes else self.options
        return type(self)(
            self.definition,
            self.client,
            options=options,
            queue=queue or self.queue,
            group=self.group_spec if group is UNSET else group,
        )

    def _check_classification(self, retry: RetryPolicy) -> None:
        """A job carries its attempts and backoff, not exception classes: the worker
        classifies errors by the definition's policy, so a per-call one may not differ."""
        own = retry.classification
        if any(own) and own != self.definition.options.retry.classification:
            raise ConfigError(
                f"job {self.name!r}: retry_on and fatal_on belong to the job's definition "
                "(@app.job or its queue's defaults); a per-call retry carries attempts and "
                "backoff only"
            )

    def _group_for(self, model: Any) -> str:
        spec = self.group_spec
        if spec is None:
            return ""
        if callable(spec):
            names = self.codec.names
            first = getattr(model, names[0]) if names else None
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
        codec = self.definition.codec
        model = codec.bind(args, kwargs)
        payload = codec.dumps(model)
        limit = self.client.settings.max_payload_bytes
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
        client = self.client
        engine = client.current_engine() or await client.engine()
        (created,) = await engine.enqueue(self.queue, (new,))
        return JobHandle(client, self.queue, new.id, self.definition.codec, created)

    def enqueue_sync(self, *args: P.args, **kwargs: P.kwargs) -> JobHandle[R]:
        """``enqueue`` for sync code (Flask, Django views, scripts)."""
        prepared = self.prepare(*args, **kwargs)
        (handle,) = self.client.portal.call(enqueue_many(self.client, [prepared]))
        return handle

    async def enqueue_many(self, calls: Sequence[PreparedJob[R]]) -> list[JobHandle[R]]:
        return await enqueue_many(self.client, calls)


class AsyncJobFunction(JobFunction[P, R]):
    """A job defined on an ``async def``: calling it gives the coroutine."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Coroutine[Any, Any, R]:
        return self.definition.fn(*args, **kwargs)  # type: ignore[no-any-return]


class SyncJobFunction(JobFunction[P, R]):
    """A job defined on a plain function (thread or process mode): calling it runs it."""

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.definition.fn(*args, **kwargs)  # type: ignore[no-any-return]


async def enqueue_many(client: Client, jobs: Sequence[PreparedJob[R]]) -> list[JobHandle[R]]:
    """Store prepared jobs of one queue atomically: all of them or none."""
    if not jobs:
        return []
    queues = {p.queue for p in jobs}
    if len(queues) > 1:
        raise ConfigError(f"enqueue_many is atomic per queue; got several: {sorted(queues)}")
    queue = jobs[0].queue
    engine = client.current_engine() or await client.engine()
    flags = await engine.enqueue(queue, [p.new for p in jobs])
    return [
        JobHandle(client, queue, p.new.id, p.function.codec, created)
        for p, created in zip(jobs, flags, strict=True)
    ]


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
