"""Builds redis-py clients from settings, with reconnect-and-retry on connection errors.

Retrying is safe for every call we make: job ids are chosen by the client, so a re-sent enqueue
finds its own job and stores nothing twice; completes and fails are fenced by token.
"""

from __future__ import annotations

import ssl
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corral.errors import ConfigError
from corral.settings import RedisTarget, TlsOptions

CONNECT_TIMEOUT_S = 5.0
"""How long opening a connection (and a TLS handshake) may take."""

SOCKET_TIMEOUT_S = 10.0
"""How long a reply may take before the connection is dropped and the call retried on a new
one. Longer than our longest blocking command (BZPOPMIN / BLPOP wait at most 5 s; redis-py 8's
default of 5 s would time those out), short enough that a half-open connection (peer gone
without a RST) is abandoned instead of hanging a heartbeat or the fetch loop for ever."""


_VERIFY = {"none": ssl.CERT_NONE, "optional": ssl.CERT_OPTIONAL, "required": ssl.CERT_REQUIRED}


def tls_context(tls: TlsOptions) -> ssl.SSLContext:
    """The SSL context of a ``rediss://`` URL's settings (our transport's; redis-py builds the
    same from ``tls_kwargs``). A file that cannot be read is a ConfigError naming the URL
    parameter, so a wrong path fails at once instead of looking like an unreachable server."""
    context = ssl.create_default_context()
    context.check_hostname = tls.verifies and tls.check_hostname  # before verify_mode
    context.verify_mode = _VERIFY[tls.cert_reqs]
    if tls.keyfile is not None and tls.certfile is None:
        raise ConfigError("TLS: ssl_keyfile needs ssl_certfile (the client certificate)")
    param, path = "", ""
    try:
        if tls.ca_certs is not None:
            param, path = "ssl_ca_certs", tls.ca_certs
            context.load_verify_locations(cafile=tls.ca_certs)
        if tls.ca_path is not None:
            param, path = "ssl_ca_path", tls.ca_path
            context.load_verify_locations(capath=tls.ca_path)
        if tls.certfile is not None:
            param, path = "ssl_certfile", tls.certfile
            context.load_cert_chain(tls.certfile, tls.keyfile, tls.password)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"TLS: {param}={path} cannot be used: {exc}") from None
    return context


def tls_kwargs(tls: TlsOptions) -> dict[str, Any]:
    """redis-py's arguments for the same settings."""
    return {
        "ssl": True,
        "ssl_cert_reqs": tls.cert_reqs,
        "ssl_ca_certs": tls.ca_certs,
        "ssl_ca_path": tls.ca_path,
        "ssl_certfile": tls.certfile,
        "ssl_keyfile": tls.keyfile,
        "ssl_password": tls.password,
        "ssl_check_hostname": tls.verifies and tls.check_hostname,
    }


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
    tls = tls_kwargs(target.tls) if target.tls is not None else {}
    return Redis(
        host=target.host or "localhost",
        port=target.port or 6379,
        socket_keepalive=True,
        **tls,
        **common,  # type: ignore[arg-type]
    )
