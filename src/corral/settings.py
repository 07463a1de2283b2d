"""Settings: where Redis is, how keys are named, and the engine's defaults.

Read from the environment (``Settings.from_env()``) or given directly. A bad value fails at
start-up with a :class:`~corral.errors.ConfigError` that names the variable.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import timedelta
from urllib.parse import parse_qs, unquote, urlsplit

from corral.errors import ConfigError

ENV_REDIS_URL = "CORRAL_REDIS_URL"
ENV_PREFIX = "CORRAL_PREFIX"
ENV_MAX_PAYLOAD = "CORRAL_MAX_PAYLOAD_BYTES"
ENV_LEASE_MS = "CORRAL_LEASE_MS"
ENV_EMBEDDED = "CORRAL_EMBEDDED"

EMBEDDED_REFUSED = (
    f"{ENV_REDIS_URL} is not set and the embedded server is refused ({ENV_EMBEDDED}=0): "
    f"point {ENV_REDIS_URL} at your Redis"
)

_SCHEMES = ("redis", "rediss", "unix")
_CERT_REQS = ("none", "optional", "required")
_TLS_PARAMS = (
    "ssl_cert_reqs",
    "ssl_ca_certs",
    "ssl_ca_path",
    "ssl_certfile",
    "ssl_keyfile",
    "ssl_password",
    "ssl_check_hostname",
)
_PREFIX_RE = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_BOOLS = {"1": True, "true": True, "yes": True, "0": False, "false": False, "no": False}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True, slots=True)
class TlsOptions:
    """The TLS settings of a ``rediss://`` URL, given as query parameters with redis-py's
    names: ``ssl_ca_certs`` / ``ssl_ca_path`` (the CA to trust; default: the system's),
    ``ssl_certfile`` / ``ssl_keyfile`` / ``ssl_password`` (a client certificate, for servers
    that ask for one), ``ssl_cert_reqs`` (``required``, the default; ``none`` accepts any
    certificate: self-signed development servers only), ``ssl_check_hostname`` (default
    true; never with ``ssl_cert_reqs=none``)."""

    cert_reqs: str = "required"
    ca_certs: str | None = None
    ca_path: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    password: str | None = None
    check_hostname: bool = True

    @property
    def verifies(self) -> bool:
        return self.cert_reqs != "none"


def _tls_options(
    query: dict[str, list[str]], scheme: str, url: str, source: str
) -> TlsOptions | None:
    given = {k: v[-1] for k, v in query.items() if k.startswith("ssl_")}
    unknown = sorted(set(given) - set(_TLS_PARAMS))
    if unknown:
        raise ConfigError(
            f"{source}={url!r}: unknown TLS parameter(s) {', '.join(unknown)} "
            f"(known: {', '.join(_TLS_PARAMS)})"
        )
    if scheme != "rediss":
        if given:
            raise ConfigError(
                f"{source}={url!r}: TLS parameters ({', '.join(sorted(given))}) need a "
                "rediss:// URL"
            )
        return None
    cert_reqs = given.get("ssl_cert_reqs", "required").lower()
    if cert_reqs not in _CERT_REQS:
        raise ConfigError(
            f"{source}={url!r}: ssl_cert_reqs must be one of {', '.join(_CERT_REQS)}, "
            f"got {cert_reqs!r}"
        )
    check = given.get("ssl_check_hostname", "true")
    if check.lower() not in _BOOLS:
        raise ConfigError(f"{source}={url!r}: ssl_check_hostname={check!r}: use true or false")
    return TlsOptions(
        cert_reqs=cert_reqs,
        ca_certs=given.get("ssl_ca_certs"),
        ca_path=given.get("ssl_ca_path"),
        certfile=given.get("ssl_certfile"),
        keyfile=given.get("ssl_keyfile"),
        password=given.get("ssl_password"),
        check_hostname=_BOOLS[check.lower()],
    )


@dataclass(frozen=True, slots=True)
class RedisTarget:
    """A parsed Redis URL, kept so errors and logs can show it without the password."""

    url: str
    scheme: str
    host: str | None
    port: int | None
    path: str | None
    db: int
    username: str | None
    password: str | None
    tls: TlsOptions | None = None  # rediss:// only

    @property
    def redacted(self) -> str:
        if self.scheme == "unix":
            return f"unix://{self.path}?db={self.db}"
        auth = "***@" if self.password else ""
        return f"{self.scheme}://{auth}{self.host}:{self.port}/{self.db}"


def parse_redis_url(url: str, *, source: str = ENV_REDIS_URL) -> RedisTarget:
    """Validate a ``redis://``, ``rediss://`` or ``unix://`` URL; ``source`` names it in errors."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ConfigError(f"{source}={url!r} is not a valid URL: {exc}") from None
    if parts.scheme not in _SCHEMES:
        raise ConfigError(
            f"{source}={url!r}: scheme must be one of redis://, rediss://, unix:// "
            f"(got {parts.scheme or 'none'!r})"
        )
    query = parse_qs(parts.query)
    tls = _tls_options(query, parts.scheme, url, source)
    db_text = query.get("db", [""])[0]
    if parts.scheme != "unix" and parts.path not in ("", "/"):
        db_text = parts.path.lstrip("/")
    try:
        db = int(db_text) if db_text else 0
    except ValueError:
        raise ConfigError(
            f"{source}={url!r}: database must be an integer, got {db_text!r}"
        ) from None
    if db < 0:
        raise ConfigError(f"{source}={url!r}: database must not be negative")
    username = unquote(parts.username) if parts.username else None
    password = unquote(parts.password) if parts.password else None
    if parts.scheme == "unix":
        if not parts.path:
            raise ConfigError(f"{source}={url!r}: unix:// URL needs a socket path")
        return RedisTarget(url, "unix", None, None, parts.path, db, username, password)
    if not parts.hostname:
        raise ConfigError(f"{source}={url!r}: missing host name")
    return RedisTarget(
        url, parts.scheme, parts.hostname, port or 6379, None, db, username, password, tls
    )


def parse_duration(text: str) -> timedelta:
    """``500ms``, ``90s``, ``5m``, ``1h30m``, ``2d``, ``1w`` -> timedelta."""
    text = text.strip().lower()
    pos, seconds = 0, 0.0
    for m in _DURATION.finditer(text):
        if m.start() != pos:
            break
        seconds += float(m.group(1)) * _UNITS[m.group(2)]
        pos = m.end()
    if pos != len(text) or not text:
        raise ConfigError(
            f"not a duration: {text!r} (a number and a unit: 500ms, 30s, 5m, 1h30m, 2d, 1w)"
        )
    return timedelta(seconds=seconds)


def describe_span(span: timedelta) -> str:
    """A duration as people read it in a message: ``10 ms``, ``1.5 s``, ``5 min``, ``2 h``
    (``str(timedelta)`` gives ``0:00:00.010000``)."""
    ms = span / timedelta(milliseconds=1)
    if abs(ms) < 1000:
        return f"{ms:g} ms"
    seconds = ms / 1000
    if abs(seconds) < 120 or seconds % 60:
        return f"{seconds:g} s"
    minutes = seconds / 60
    if abs(minutes) < 120 or minutes % 60:
        return f"{minutes:g} min"
    return f"{minutes / 60:g} h"


def _env_bool(name: str, text: str) -> bool:
    try:
        return _BOOLS[text.lower()]
    except KeyError:
        raise ConfigError(f"{name}={text!r}: use 1/0, true/false or yes/no") from None


def _env_int(name: str, text: str, unit: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"{name}={text!r} is not a whole number of {unit}") from None


@dataclass(frozen=True, slots=True)
class Settings:
    """Connection and engine defaults. Immutable; derive variants with :meth:`replace`."""

    redis_url: str | None = None
    prefix: str = "corral"
    max_payload_bytes: int = 512 * 1024
    lease: timedelta = timedelta(seconds=30)
    reap_interval: timedelta = timedelta(seconds=2)
    connect_retries: int = 5
    embedded: bool = True  # no redis_url: use the project's shared server (False: refuse)

    def __post_init__(self) -> None:
        if self.redis_url is not None:
            parse_redis_url(self.redis_url)
        if not _PREFIX_RE.match(self.prefix):
            raise ConfigError(
                f"{ENV_PREFIX}={self.prefix!r}: use 1-64 letters, digits, '_', '-' or '.'"
            )
        if self.max_payload_bytes <= 0:
            raise ConfigError(
                f"{ENV_MAX_PAYLOAD} must be a positive number of bytes, "
                f"got {self.max_payload_bytes}"
            )
        if self.lease < timedelta(milliseconds=200):
            raise ConfigError(
                f"lease ({ENV_LEASE_MS}) must be at least 200 ms, got {describe_span(self.lease)}"
            )
        if self.reap_interval <= timedelta(0):
            raise ConfigError(
                f"reap_interval must be positive, got {describe_span(self.reap_interval)}"
            )
        if self.connect_retries < 0:
            raise ConfigError(f"connect_retries must not be negative, got {self.connect_retries}")

    @property
    def target(self) -> RedisTarget | None:
        return parse_redis_url(self.redis_url) if self.redis_url else None

    def replace(self, **changes: object) -> Settings:
        return replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_url(cls, url: str, **overrides: object) -> Settings:
        parse_redis_url(url, source="redis URL")
        return cls(redis_url=url, **overrides)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: object) -> Settings:
        env = os.environ if environ is None else environ
        values: dict[str, object] = {}
        url = env.get(ENV_REDIS_URL, "").strip()
        if url:
            parse_redis_url(url)
            values["redis_url"] = url
        prefix = env.get(ENV_PREFIX, "").strip()
        if prefix:
            values["prefix"] = prefix
        size = env.get(ENV_MAX_PAYLOAD, "").strip()
        if size:
            values["max_payload_bytes"] = _env_int(ENV_MAX_PAYLOAD, size, "bytes")
        lease = env.get(ENV_LEASE_MS, "").strip()
        if lease:
            values["lease"] = timedelta(milliseconds=_env_int(ENV_LEASE_MS, lease, "milliseconds"))
        embedded = env.get(ENV_EMBEDDED, "").strip()
        if embedded:
            values["embedded"] = _env_bool(ENV_EMBEDDED, embedded)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
