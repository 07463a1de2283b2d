"""The loop a process-mode child runs: receive a job, run the sync handler, send the outcome.

Messages from the parent: ``(module, qualname, payload_json, context_fields)``.
Messages to the parent: ``("touch", progress_json, log_line)`` while running, then one of
``("ok", result_json)``, ``("retry", delay_s, message)``, ``("fatal", type, message, tb)``,
``("error", type, message, tb)``.
"""

from __future__ import annotations

import importlib
import signal
from multiprocessing.connection import Connection
from typing import Any

from corral.codec import PayloadCodec, to_json
from corral.context import JobContext, reset_current, set_current
from corral.errors import Fatal, RateLimited, Retry
from corral.worker.outcome import error_type, format_tb, safe_text


def resolve(module: str, qualname: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    return obj


def child_main(conn: Connection) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when children stop
    cache: dict[tuple[str, str], Any] = {}
    while True:
        try:
            module, qualname, payload, fields = conn.recv()
        except (EOFError, OSError):
            return
        key = (module, qualname)
        if key not in cache:
            obj = resolve(module, qualname)
            fn = getattr(obj, "fn", obj)  # a JobFunction, or the plain function it wraps
            cache[key] = (fn, PayloadCodec(fn, fields["name"]))
        fn, codec = cache[key]

        def writer(progress: Any, line: str) -> None:
            conn.send(("touch", "" if progress is None else to_json(progress), line))

        ctx = JobContext(writer=writer, **fields)
        token = set_current(ctx)
        try:
            result = fn(**codec.loads(payload))
            conn.send(("ok", codec.dump_result(result)))
        except Retry as exc:
            limited = isinstance(exc, RateLimited)
            conn.send(("retry", exc.delay.total_seconds(), safe_text(exc), limited))
        except Fatal as exc:
            conn.send(("fatal", error_type(exc), safe_text(exc), format_tb(exc)))
        except BaseException as exc:
            conn.send(("error", error_type(exc), safe_text(exc), format_tb(exc)))
        finally:
            reset_current(token)
