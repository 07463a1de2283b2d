"""TLS (``rediss://``) and AUTH (an ACL user and password) against a real server: Debian's
``redis-server`` started here with TLS only (no plain TCP port, so every connection the tests
make over TCP is TLS) and certificates made by the test with ``openssl``. Both of our
connections use the URL's TLS settings: our pipelined transport (every script) and redis-py
(blocking waits, pub/sub, reads); a job that runs end to end goes through both. The embedded
Valkey is built without TLS, so these tests need ``redis-server`` (and skip without it)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from corral import App, ConfigError
from corral.embedded import EmbeddedServer, ServerOptions, free_port
from corral.testing import running_worker

PASSWORD = "s3cret word"  # a space: the URL must carry it quoted


def _tls_server_binary() -> str | None:
    binary = shutil.which("redis-server")
    if binary is None or shutil.which("openssl") is None:
        return None
    try:  # exits at once: with TLS built in it asks for a certificate, else it cannot do TLS
        probe = subprocess.run(
            [binary, "--port", "0", "--tls-port", str(free_port())],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except subprocess.TimeoutExpired:
        return None
    said = probe.stdout + probe.stderr
    return binary if "tls-cert-file" in said or "tls-key-file" in said else None


BINARY = _tls_server_binary()
pytestmark = pytest.mark.skipif(BINARY is None, reason="needs redis-server with TLS and openssl")


@dataclass
class TlsServer:
    server: EmbeddedServer
    port: int
    certs: Path

    def url(
        self,
        *,
        user: str = "alice",
        password: str = PASSWORD,
        host: str = "localhost",
        **params: str,
    ) -> str:
        query = "&".join(f"{k}={v}" for k, v in params.items())
        auth = f"{user}:{quote(password)}@" if password else ""
        return f"rediss://{auth}{host}:{self.port}/0" + (f"?{query}" if query else "")

    @property
    def ca(self) -> str:
        return str(self.certs / "ca.crt")

    def admin(self) -> redis.Redis:
        """Over the unix socket, as alice (what a test uses to change the server's settings)."""
        return redis.Redis(
            unix_socket_path=str(self.server.socket_path),
            username="alice",
            password=PASSWORD,
            decode_responses=True,
        )


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(where: Path) -> None:
    """A CA, a server certificate for ``localhost`` only (so 127.0.0.1 fails the hostname
    check) and a client certificate, all signed by the CA."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-keyout", "ca.key",
             "-out", "ca.crt", "-subj", "/CN=Corral test CA", cwd=where)  # fmt: skip
    for name, usage, san in (
        ("server", "serverAuth", "subjectAltName=DNS:localhost\n"),
        ("client", "clientAuth", ""),
    ):
        (where / f"{name}.ext").write_text(
            f"{san}basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n"
            f"extendedKeyUsage={usage}\nauthorityKeyIdentifier=keyid,issuer\n"
        )
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out",
                 f"{name}.csr", "-subj", f"/CN=corral-{name}", cwd=where)  # fmt: skip
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-days", "2", "-out", f"{name}.crt", "-extfile",
                 f"{name}.ext", cwd=where)  # fmt: skip


@pytest.fixture(scope="module")
def tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    certs = tmp_path_factory.mktemp("certs")
    make_certs(certs)
    port = free_port()
    extra = (
        "--tls-port", str(port),
        "--tls-cert-file", str(certs / "server.crt"),
        "--tls-key-file", str(certs / "server.key"),
        "--tls-ca-cert-file", str(certs / "ca.crt"),
        "--tls-auth-clients", "optional",
        # one argument per ACL rule: the server quotes each (the password has a space)
        "--user", "alice", "on", f">{PASSWORD}", "~*", "&*", "+@all",
        # without credentials: PING only (the readiness check), nothing else
        "--user", "default", "on", "nopass", "-@all", "+ping",
    )  # fmt: skip
    server = EmbeddedServer(ServerOptions(extra=extra), binary=Path(BINARY or "")).start()
    yield TlsServer(server, port, certs)
    server.stop()


def corral(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_REDIS_URL"}
    return subprocess.run(
        [sys.executable, "-m", "corral", *args],
        env=env, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def one_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


async def run_a_job(url: str, prefix: str) -> str:
    """Enqueue (transport), run with a worker (redis-py's BZPOPMIN and pub/sub, the
    transport's claim and complete) and wait for the result (redis-py's BLPOP)."""
    app = App.from_url(url, prefix=prefix)

    @app.job(queue="secure")
    async def greet(name: str) -> str:
        return f"hello {name}"

    async with app, running_worker(app, ["secure"]):
        handle = await greet.enqueue("tls")
        result = await handle.result(timeout=20)
        await app.queue("secure").pause()  # a plain redis-py command
        assert (await app.queue("secure").counts()).paused
    return result


async def test_a_job_runs_over_tls_with_an_acl_user(tls: TlsServer, prefix: str) -> None:
    assert await run_a_job(tls.url(ssl_ca_certs=tls.ca), prefix) == "hello tls"
    clients = tls.admin().client_list()
    assert not [c for c in clients if c.get("name", "").startswith("corral")]  # all closed


async def test_a_self_signed_dev_server_with_cert_reqs_none(tls: TlsServer, prefix: str) -> None:
    url = tls.url(host="127.0.0.1", ssl_cert_reqs="none")  # neither the CA nor the name checked
    assert await run_a_job(url, prefix) == "hello tls"


async def test_the_hostname_is_checked_unless_told_not_to(tls: TlsServer, prefix: str) -> None:
    wrong_name = tls.url(host="127.0.0.1", ssl_ca_certs=tls.ca)  # the certificate says localhost
    with pytest.raises(ConfigError, match="TLS with .* failed.*ssl_check_hostname=false"):
        await App.from_url(wrong_name, prefix=prefix).connect()
    unchecked = tls.url(host="127.0.0.1", ssl_ca_certs=tls.ca, ssl_check_hostname="false")
    assert await run_a_job(unchecked, prefix) == "hello tls"


async def test_a_client_certificate_when_the_server_asks_for_one(
    tls: TlsServer, prefix: str
) -> None:
    admin = tls.admin()
    admin.config_set("tls-auth-clients", "yes")
    try:
        with pytest.raises(ConfigError, match="TLS with .* failed"):
            await App.from_url(tls.url(ssl_ca_certs=tls.ca), prefix=prefix).connect()
        url = tls.url(
            ssl_ca_certs=tls.ca,
            ssl_certfile=str(tls.certs / "client.crt"),
            ssl_keyfile=str(tls.certs / "client.key"),
        )
        assert await run_a_job(url, prefix) == "hello tls"
    finally:
        admin.config_set("tls-auth-clients", "optional")


async def test_auth_over_a_unix_socket(tls: TlsServer, prefix: str) -> None:
    """The transport's AUTH without TLS (redis-py's too)."""
    url = f"unix://alice:{quote(PASSWORD)}@{tls.server.socket_path}?db=0"
    assert await run_a_job(url, prefix) == "hello tls"


def test_a_wrong_password_is_one_clear_line(tls: TlsServer) -> None:
    proc = corral("queue", "ls", "--url", tls.url(password="wrong", ssl_ca_certs=tls.ca))
    assert proc.returncode == 2
    line = one_line(proc)
    assert "refused the credentials" in line and "wrong" not in line  # never the password
    assert "rediss://***@localhost" in line


def test_no_credentials_is_one_clear_line(tls: TlsServer) -> None:
    proc = corral("queue", "ls", "--url", tls.url(password="", ssl_ca_certs=tls.ca))
    assert proc.returncode == 2
    assert "check the URL's user/password" in one_line(proc)


def test_an_untrusted_certificate_is_one_clear_line(tls: TlsServer) -> None:
    proc = corral("info", "--url", tls.url())  # the system's CAs do not know ours
    assert proc.returncode == 2
    line = one_line(proc)
    assert "certificate verify failed" in line and "ssl_ca_certs" in line


def test_a_missing_ca_file_is_named(tls: TlsServer, tmp_path: Path) -> None:
    proc = corral("info", "--url", tls.url(ssl_ca_certs=str(tmp_path / "nope.crt")))
    assert proc.returncode == 2
    assert f"ssl_ca_certs={tmp_path / 'nope.crt'} cannot be used" in one_line(proc)


async def test_the_python_api_raises_config_errors(tls: TlsServer) -> None:
    for url in (tls.url(password="wrong", ssl_ca_certs=tls.ca), tls.url()):
        app = App.from_url(url)
        with pytest.raises(ConfigError):
            await asyncio.wait_for(app.connect(), 30)
        await app.close()
