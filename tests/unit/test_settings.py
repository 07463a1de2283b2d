import ssl
from datetime import timedelta
from pathlib import Path

import pytest

from corral import ConfigError, Settings
from corral.engine.connection import tls_context, tls_kwargs
from corral.settings import TlsOptions, describe_span, parse_duration, parse_redis_url


def test_from_env_reads_url_prefix_and_limit() -> None:
    s = Settings.from_env(
        {
            "CORRAL_REDIS_URL": "redis://:s3cret@cache.internal:6380/2",
            "CORRAL_PREFIX": "shop-jobs",
            "CORRAL_MAX_PAYLOAD_BYTES": "1024",
        }
    )
    t = s.target
    assert t is not None
    assert (t.host, t.port, t.db, t.password) == ("cache.internal", 6380, 2, "s3cret")
    assert s.prefix == "shop-jobs" and s.max_payload_bytes == 1024
    assert "s3cret" not in t.redacted


def test_unset_url_means_embedded() -> None:
    assert Settings.from_env({}).redis_url is None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("http://localhost:6379", "scheme must be one of"),
        ("redis://localhost:notaport", "not a valid URL"),
        ("redis://localhost:6379/abc", "database must be an integer"),
        ("redis://:6379/0", "missing host"),
        ("unix://", "socket path"),
    ],
)
def test_bad_url_names_the_variable(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as err:
        Settings.from_env({"CORRAL_REDIS_URL": url})
    assert "CORRAL_REDIS_URL" in str(err.value)
    assert fragment in str(err.value)


def test_unix_and_tls_urls() -> None:
    unix = parse_redis_url("unix:///run/redis.sock?db=3")
    assert (unix.scheme, unix.path, unix.db) == ("unix", "/run/redis.sock", 3)
    tls = parse_redis_url("rediss://user:pw@example.com:6390/1")
    assert (tls.scheme, tls.username, tls.password, tls.port) == ("rediss", "user", "pw", 6390)


@pytest.mark.parametrize(
    ("env", "fragment"),
    [
        ({"CORRAL_PREFIX": "has space"}, "CORRAL_PREFIX"),
        ({"CORRAL_MAX_PAYLOAD_BYTES": "big"}, "CORRAL_MAX_PAYLOAD_BYTES"),
        ({"CORRAL_MAX_PAYLOAD_BYTES": "0"}, "CORRAL_MAX_PAYLOAD_BYTES"),
        ({"CORRAL_EMBEDDED": "maybe"}, "CORRAL_EMBEDDED"),
    ],
)
def test_bad_values_name_the_variable(env: dict[str, str], fragment: str) -> None:
    with pytest.raises(ConfigError, match=fragment):
        Settings.from_env(env)


def test_lease_floor() -> None:
    with pytest.raises(ConfigError, match="lease"):
        Settings(lease=timedelta(milliseconds=10))


@pytest.mark.parametrize(
    ("env", "message"),
    [
        (
            {"CORRAL_LEASE_MS": "10"},
            "lease (CORRAL_LEASE_MS) must be at least 200 ms, got 10 ms",
        ),
        ({"CORRAL_LEASE_MS": "-1500"}, "got -1.5 s"),
        ({"CORRAL_LEASE_MS": "30s"}, "CORRAL_LEASE_MS='30s' is not a whole number of milliseconds"),
        (
            {"CORRAL_MAX_PAYLOAD_BYTES": "1MB"},
            "CORRAL_MAX_PAYLOAD_BYTES='1MB' is not a whole number of bytes",
        ),
        ({"CORRAL_MAX_PAYLOAD_BYTES": "-1"}, "must be a positive number of bytes, got -1"),
    ],
)
def test_messages_say_units_people_read(env: dict[str, str], message: str) -> None:
    """Issue 13.9: not ``0:00:00.010000`` but ``10 ms``; a number's unit is named."""
    with pytest.raises(ConfigError) as err:
        Settings.from_env(env)
    assert message in str(err.value)
    assert "0:00" not in str(err.value)


@pytest.mark.parametrize(
    ("span", "text"),
    [
        (timedelta(milliseconds=10), "10 ms"),
        (timedelta(milliseconds=0.5), "0.5 ms"),
        (timedelta(seconds=1.5), "1.5 s"),
        (timedelta(seconds=90), "90 s"),
        (timedelta(minutes=5), "5 min"),
        (timedelta(minutes=90), "90 min"),
        (timedelta(hours=2), "2 h"),
    ],
)
def test_describe_span(span: timedelta, text: str) -> None:
    assert describe_span(span) == text


def test_other_settings_messages_name_their_values() -> None:
    with pytest.raises(ConfigError, match="reap_interval must be positive, got 0 ms"):
        Settings(reap_interval=timedelta(0))
    with pytest.raises(ConfigError, match="connect_retries must not be negative, got -1"):
        Settings(connect_retries=-1)
    with pytest.raises(ConfigError, match=r"a number and a unit: 500ms"):
        parse_duration("10")


@pytest.mark.parametrize(
    ("text", "allowed"),
    [("0", False), ("no", False), ("False", False), ("1", True), ("yes", True), ("TRUE", True)],
)
def test_embedded_flag(text: str, allowed: bool) -> None:
    assert Settings.from_env({"CORRAL_EMBEDDED": text}).embedded is allowed


def test_embedded_is_allowed_by_default_and_app_overrides_it() -> None:
    from corral import App

    assert Settings.from_env({}).embedded is True
    refused = Settings.from_env({"CORRAL_EMBEDDED": "0"})
    assert App(refused).settings.embedded is False
    assert App(refused, embedded=True).settings.embedded is True
    assert App(embedded=False).settings.embedded is False


def test_tls_parameters_follow_redis_py_names() -> None:
    t = parse_redis_url(
        "rediss://app:pw@redis.internal:6380/1?ssl_ca_certs=/etc/ca.pem"
        "&ssl_certfile=/etc/me.crt&ssl_keyfile=/etc/me.key&ssl_check_hostname=false"
    )
    assert t.tls == TlsOptions(
        ca_certs="/etc/ca.pem", certfile="/etc/me.crt", keyfile="/etc/me.key",
        check_hostname=False,
    )  # fmt: skip
    assert t.redacted == "rediss://***@redis.internal:6380/1"
    plain = parse_redis_url("rediss://redis.internal?ssl_cert_reqs=NONE").tls
    assert plain is not None and (plain.cert_reqs, plain.verifies) == ("none", False)
    assert parse_redis_url("rediss://h").tls == TlsOptions()  # verified against the system's CAs
    assert parse_redis_url("redis://h").tls is None


@pytest.mark.parametrize(
    ("url", "fragment"),
    [
        ("rediss://h?ssl_ca_cert=/x", "unknown TLS parameter(s) ssl_ca_cert"),
        ("redis://h?ssl_cert_reqs=none", "TLS parameters (ssl_cert_reqs) need a rediss:// URL"),
        ("rediss://h?ssl_cert_reqs=sometimes", "ssl_cert_reqs must be one of none"),
        ("rediss://h?ssl_check_hostname=maybe", "ssl_check_hostname='maybe'"),
    ],
)
def test_bad_tls_parameters_are_named(url: str, fragment: str) -> None:
    with pytest.raises(ConfigError) as exc:
        Settings.from_env({"CORRAL_REDIS_URL": url})
    assert "CORRAL_REDIS_URL" in str(exc.value) and fragment in str(exc.value)


def test_tls_context_matches_the_settings(tmp_path: Path) -> None:
    strict = tls_context(TlsOptions())
    assert (strict.verify_mode, strict.check_hostname) == (ssl.CERT_REQUIRED, True)
    lax = tls_context(TlsOptions(cert_reqs="none"))
    assert (lax.verify_mode, lax.check_hostname) == (ssl.CERT_NONE, False)
    assert tls_kwargs(TlsOptions(cert_reqs="none"))["ssl_check_hostname"] is False
    with pytest.raises(ConfigError, match=r"ssl_ca_certs=.*nope.pem cannot be used"):
        tls_context(TlsOptions(ca_certs=str(tmp_path / "nope.pem")))
    with pytest.raises(ConfigError, match="ssl_keyfile needs ssl_certfile"):
        tls_context(TlsOptions(keyfile=str(tmp_path / "k.pem")))
