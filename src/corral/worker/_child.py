"""The loop a process-mode child runs: warm up, then receive a job, run the handler, report.

The child is started with the handlers to import, ``(module, qualname, job name)`` each, and
imports them all before it reports ``("ready", failures)`` (``failures``: ``(handler, error)``
pairs of imports that raised; those jobs fail when they run). A child is given jobs only once
ready, so a slow import never counts against a job's timeout.

Messages from the parent: ``(module, qualname, payload_json, context_fields)``.
Messages to the parent: ``("started",)`` right before the handler is called (the job's timeout
runs from here), ``("touch", progress_json, log_line)`` while it runs, then one of
``("ok", result_json)``, ``("retry", delay_s, message, rate_limited)``,
``("fatal", type, message, tb)``, ``("error", type, message, tb, class_chain)``. A job
whose handler cannot be imported gets ``("error", ...)`` without ``("started",)``.
"""

from __future__ import annotations

import importlib
import signal
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from typing import Any

from corral.codec import PayloadCodec, to_json
from corral.context import JobContext, reset_current, set_current
from corral.errors import Fatal, RateLimited, Retry
from corral.worker.decisions import error_type, error_types, format_tb, safe_text

Handler = tuple[Callable[..., Any], PayloadCodec]


def resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def load(module: str, qualname: str, name: str) -> Handler:
    obj = resolve(module, qualname)
    fn = getattr(obj, "fn", obj)  # a JobFunction, or the plain function it wraps
    return fn, PayloadCodec(fn, name)


def child_main(conn: Connection, targets: Sequence[tuple[str, str, str]] = ()) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop
    handlers: dict[tuple[str, str], Handler] = {}
    failures: list[tuple[str, str]] = []
    for module, qualname, name in targets:
        try:
            handlers[(module, qualname)] = load(module, qualname, name)
        except BaseException as exc:  # reported now, raised again when the job runs
            failures.append((f"{module}:{qualname}", f"{error_type(exc)}: {safe_text(exc)}"))
    try:
        conn.send(("ready", failures))
    except OSError:  # the parent gave up on us while we imported
        return
    while True:
        try:
            module, qualname, payload, fields = conn.recv()
        except (EOFError, OSError):
            return

        def writer(progress: Any, line: str) -> None:
            conn.send(("touch", "" if progress is None else to_json(progress), line))

        ctx = JobContext(writer=writer, **fields)
        token = set_current(ctx)
        try:
            key = (module, qualname)
            if key not in handlers:  # not warmed (a job of another queue): import it now
                handlers[key] = load(module, qualname, fields["name"])
            fn, codec = handlers[key]
            kwargs = codec.loads(payload)
            conn.send(("started",))
            result = fn(**kwargs)
            conn.send(("ok", codec.dump_result(result)))
        except Retry as exc:
            limited = isinstance(exc, RateLimited)
            conn.send(("retry", exc.delay.total_seconds(), safe_text(exc), limited))
        except Fatal as exc:
            conn.send(("fatal", error_type(exc), safe_text(exc), format_tb(exc)))
        except BaseException as exc:
            tb = format_tb(exc)
            conn.send(("error", error_type(exc), safe_text(exc), tb, error_types(exc)))
        finally:
            reset_current(token)
