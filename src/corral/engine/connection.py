"""Builds redis-py clients from settings, with reconnect-and-retry on connection errors.

Retrying is safe for every call we make: job ids are chosen by the client, so a re-sent enqueue
finds its own job and stores nothing twice; completes and fails are fenced by token.
"""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corral.settings import RedisTarget

CONNECT_TIMEOUT_S = 5.0
"""How long opening a connection (and a TLS handshake) may take."""

SOCKET_TIMEOUT_S = 10.0
"""How long a reply may take before the connection is dropped and the call retried on a new
one. Longer than our longest blocking command (BZPOPMIN / BLPOP wait at most 5 s; redis-py 8's
default of 5 s would time those out), short enough that a half-open connection (peer gone
without a RST) is abandoned instead of hanging a heartbeat or the fetch loop for ever."""


def make_client(target: RedisTarget, *, retries: int = 5, name: str = "corral") -> Redis:
    retry = Retry(ExponentialBackoff(cap=2.0, base=0.05), retries)
    common = {
        "db": target.db,
        "username": target.username,
        "password": target.password,
        "decode_responses": True,
        "retry": retry,
        "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        "health_check_interval": 30,
        "client_name": name,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_timeout": SOCKET_TIMEOUT_S,
    }
    if target.scheme == "unix":
        return Redis(unix_socket_path=target.path, **common)  # type: ignore[arg-type]
    return Redis(
        host=target.host or "localhost",
        port=target.port or 6379,
        ssl=target.scheme == "rediss",
        socket_keepalive=True,
        **common,  # type: ignore[arg-type]
    )
