"""Redis connection failures become :class:`corral.errors.ConnectionLost` at the engine's edge,
so callers above the engine see one exception tree, never redis-py's."""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

from redis.exceptions import BusyLoadingError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corral.errors import ConnectionLost

P = ParamSpec("P")
T = TypeVar("T")

CONNECTION_ERRORS = (RedisConnectionError, RedisTimeoutError, BusyLoadingError, OSError)


def connection_errors(
    fn: Callable[P, Coroutine[Any, Any, T]],
) -> Callable[P, Coroutine[Any, Any, T]]:
    """Decorate an engine method: a lost or refused connection raises ConnectionLost."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await fn(*args, **kwargs)
        except ConnectionLost:
            raise
        except CONNECTION_ERRORS as exc:
            raise ConnectionLost(f"Redis unreachable during {fn.__name__}: {exc}") from exc

    return wrapper
