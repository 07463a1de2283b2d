"""The first contact with a server: one PING that says plainly what is wrong with a URL.

A wrong URL fails at once, in one line: a TLS URL for a plain port (or the reverse), a port that
does not speak Redis (an HTTP server), a database the server does not have, credentials it
refuses. A server that does not answer at all may be starting (a container, a restart): that is
retried with back-off before ConnectionLost.

A TLS handshake that times out, or a plain connection closed at once, is only a wrong URL when
the port shows it: it answers a plain PING (a TLS URL for a plain port), or completes a TLS
handshake (a plain URL for a TLS port). Otherwise it is a slow or restarting server, retried.
"""

from __future__ import annotations

import asyncio
import logging
import ssl

from redis.exceptions import InvalidResponse, RedisError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from corral.engine.connection import CONNECT_TIMEOUT_S, make_client, tls_context
from corral.engine.errors import CONNECTION_ERRORS, corral_error
from corral.errors import ConfigError, ConnectionLost
from corral.settings import RedisTarget

log = logging.getLogger(__name__)


def _tls_failure(exc: BaseException) -> bool:
    while exc is not None:
        if isinstance(exc, ssl.SSLError):
            return True
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    return False


SNIFF_TIMEOUT_S = 2.0


async def _answers_plain_ping(target: RedisTarget) -> bool:
    """Does the port answer a plain-text PING as Redis does (``+PONG`` or an error reply)?"""
    try:
        async with asyncio.timeout(SNIFF_TIMEOUT_S):
            reader, writer = await asyncio.open_connection(target.host, target.port)
            try:
                writer.write(b"PING\r\n")
                await writer.drain()
                line = await reader.readline()
            finally:
                writer.close()
    except (OSError, TimeoutError):
        return False
    return line[:1] in (b"+", b"-")


async def _completes_tls_handshake(target: RedisTarget) -> bool:
    """Does the port speak TLS (any certificate: this only tells the two kinds of port apart)?"""
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        async with asyncio.timeout(SNIFF_TIMEOUT_S):
            _, writer = await asyncio.open_connection(target.host, target.port, ssl=context)
            writer.close()
    except (OSError, TimeoutError):  # ssl.SSLError is an OSError
        return False
    return True


async def _diagnose(exc: BaseException, target: RedisTarget) -> ConfigError | None:
    """A wrong URL, named; None when the server may just be unreachable for now."""
    where = target.redacted
    text = str(exc)
    timed_out = isinstance(exc, RedisTimeoutError | TimeoutError)
    if target.scheme == "rediss" and timed_out and await _answers_plain_ping(target):
        return ConfigError(
            f"no TLS handshake from {where} within {CONNECT_TIMEOUT_S:g}s and it answers plain "
            "Redis: use redis:// for a plain server"
        )
    if target.scheme == "rediss" and _tls_failure(exc) and not timed_out:
        hint = ""
        if "mismatch, certificate is not valid" in text:
            hint = (
                " (connect by a name the certificate holds, or, if you must, "
                "?ssl_check_hostname=false)"
            )
        elif "CERTIFICATE_VERIFY_FAILED" in text:
            hint = (
                " (trust the server's CA with ?ssl_ca_certs=/path/ca.pem; for a self-signed "
                "development server only, ?ssl_cert_reqs=none)"
            )
        return ConfigError(f"TLS with {where} failed: {text}{hint}")
    if (
        target.scheme == "redis"
        and "closed by server" in text
        and await _completes_tls_handshake(target)
    ):
        return ConfigError(
            f"{where} closed the connection at once and speaks TLS: use rediss:// for a TLS port"
        )
    if isinstance(exc, InvalidResponse):
        return ConfigError(
            f"{where} does not answer as a Redis server ({text}): is the port right?"
        )
    if isinstance(exc, ResponseError) and "DB index" in text:
        return ConfigError(
            f"{where}: the server has no database {target.db} (see its `databases` setting, "
            "16 by default)"
        )
    return None


async def probe(target: RedisTarget, *, retries: int, name: str = "corral") -> None:
    """PING the server once; raise ConfigError for a wrong URL, ConnectionLost when it stays
    unreachable after ``retries`` back-offs."""
    if target.tls is not None:
        tls_context(target.tls)  # a CA or certificate file that cannot be read, named
    client = make_client(target, retries=0, name=name)
    pause = 0.05
    try:
        for attempt in range(retries + 1):
            try:
                await client.ping()
                return
            except (RedisError, OSError) as exc:
                wrong = await _diagnose(exc, target)
                if wrong is not None:
                    raise wrong from None
                if not isinstance(exc, CONNECTION_ERRORS) or attempt == retries:
                    raise corral_error(exc, target.redacted) from None
                log.debug("Redis at %s: %s; retrying in %.2fs", target.redacted, exc, pause)
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
    finally:
        await client.aclose()
    raise ConnectionLost(f"Redis at {target.redacted} is unreachable")  # pragma: no cover
