from datetime import timedelta

import pytest

from corral import ConfigError, Settings
from corral.settings import parse_redis_url


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
