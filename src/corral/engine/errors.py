"""Every redis-py exception becomes one of Corral's at the engine's edge, here and nowhere
else, so callers above the engine see one exception tree.

- a lost or refused connection, a timeout, a server still loading its data: ConnectionLost
- credentials or permissions the server refuses: ConfigError (the fix is in the settings)
- an error reply (a Lua ``ERR_*`` code of ours, or the server's own): see :func:`translate`
- anything else redis-py raises (a reply it cannot parse): ServerError
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import (
    AuthenticationError,
    AuthorizationError,
    NoPermissionError,
    RedisError,
    ResponseError,
)
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corral.errors import (
    ConfigError,
    ConnectionLost,
    CorralError,
    PayloadError,
    QueueFull,
    ServerError,
)

P = ParamSpec("P")
T = TypeVar("T")

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, OSError)


def _queue_full(detail: str) -> CorralError:
    """``ERR_QUEUE_FULL <queue> <cap> <count> <new>`` (enqueue.lua)."""
    try:
        queue, cap, count, new = detail.split()
        return QueueFull(queue, int(cap), int(count), int(new))
    except ValueError:
        return ServerError(f"queue full: {detail}")


_SCRIPT_CODES: dict[str, Callable[[str], CorralError]] = {
    "ERR_BAD_JOB": PayloadError,
    "ERR_BAD_GROUP": ConfigError,
    "ERR_BAD_STATE": ConfigError,
    "ERR_QUEUE_FULL": _queue_full,
}


def translate(exc: ResponseError) -> CorralError:
    """An error reply: a Lua ``redis.error_reply('CODE message')`` of ours, or the server's."""
    text = str(exc)
    for code, make in _SCRIPT_CODES.items():
        if text.startswith(code):
            return make(text[len(code) :].strip())
    if isinstance(exc, NoPermissionError) or text.startswith("NOAUTH"):
        return ConfigError(f"Redis refused the command: {text} (check the URL's user/password)")
    return ServerError(f"Redis refused the command: {text}")


def corral_error(exc: BaseException, where: str) -> CorralError:
    """The Corral exception for anything redis-py (or the socket under it) raised."""
    if isinstance(exc, CorralError):
        return exc
    if isinstance(exc, AuthenticationError | AuthorizationError):
        return ConfigError(f"Redis at {where} refused the credentials: {exc}")
    if isinstance(exc, CONNECTION_ERRORS):
        return ConnectionLost(f"Redis at {where} is unreachable: {exc or type(exc).__name__}")
    if isinstance(exc, ResponseError):
        return translate(exc)
    return ServerError(f"unexpected answer from Redis at {where}: {exc}")


def redis_errors(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an engine method (its object has ``where``, the redacted URL, and may have
    ``revived``): whatever redis-py raises comes out as a Corral exception; a lost connection
    to a server that was started again is retried once."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except CorralError:
            raise
        except (RedisError, OSError) as exc:
            error = corral_error(exc, _where(args[0]))
            revived = getattr(args[0], "revived", None)
            if revived is None or not await revived(error):
                raise error from exc
        try:
            return await fn(*args, **kwargs)
        except CorralError:
            raise
        except (RedisError, OSError) as exc:
            raise corral_error(exc, _where(args[0])) from exc

    return wrapper


def _where(engine: object) -> str:
    return str(getattr(engine, "where", "the configured URL"))
