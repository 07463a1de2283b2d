"""The shared development server: one per project, found by every process of it.

With no ``CORRAL_REDIS_URL``, every process of a project (workers, scripts that enqueue, the
operator CLI, the demo) uses the same server, so a job enqueued in one shell runs in a worker
started in another, as with a Redis on localhost. It lives in the project's home,
``$CORRAL_HOME`` or else ``.corral/`` at the project root (the nearest ancestor of the current
directory with ``pyproject.toml``, ``setup.py``, ``setup.cfg`` or ``.git``)::

    .corral/
        .gitignore      "*": never committed
        lock            flock: one process at a time starts or stops the server
        keeper.lock     held by the keeper for as long as it lives
        server.json     keeper pid, server pid, url, binary, started_at (while running)
        data/           the append-only file (appendfsync everysec): a restart loses nothing
        redis.sock      the unix socket (in /tmp/corral-<uid>/ when this path is too long)
        server.log, keeper.log

The first process that needs the server starts it under a keeper (:mod:`corral._keeper`), a
detached process that outlives its starter and stops the server once no client has been
connected for the idle time (``CORRAL_EMBEDDED_IDLE``, 15 minutes by default), on SIGTERM, or
with ``corral server stop``. Production sets ``CORRAL_REDIS_URL`` (and ``CORRAL_EMBEDDED=0``, so
a misspelt variable fails instead of running on this server).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import functools
import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import timedelta
from pathlib import Path
from typing import IO, Any

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from corral.embedded import find_server_binary, ping_server
from corral.errors import ConfigError, EmbeddedServerError
from corral.settings import ENV_EMBEDDED, ENV_REDIS_URL, parse_duration

log = logging.getLogger(__name__)

ENV_HOME = "CORRAL_HOME"
ENV_IDLE = "CORRAL_EMBEDDED_IDLE"
DEFAULT_IDLE = timedelta(minutes=15)
PROJECT_MARKERS = ("pyproject.toml", "setup.py", "setup.cfg", ".git")
KEEPER_NAME = "corral-keeper"  # the keeper's client name, so status can leave it out
MAX_SOCKET_PATH = 100  # sun_path holds 104-108 bytes depending on the OS
READY_TIMEOUT = 60.0  # loading a large append-only file takes a while
STOP_TIMEOUT = 30.0


@dataclass(frozen=True, slots=True)
class ServerHome:
    """Where one shared server keeps its files; every path is derived from ``path``."""

    path: Path

    @property
    def data(self) -> Path:
        return self.path / "data"

    @property
    def lock(self) -> Path:
        return self.path / "lock"

    @property
    def keeper_lock(self) -> Path:
        return self.path / "keeper.lock"

    @property
    def state_file(self) -> Path:
        return self.path / "server.json"

    @property
    def stopped_marker(self) -> Path:
        """Present after ``corral server stop``, until something starts the server again:
        clients that lose it then do not start it again behind the user's back."""
        return self.path / "stopped"

    @property
    def server_log(self) -> Path:
        return self.path / "server.log"

    @property
    def keeper_log(self) -> Path:
        return self.path / "keeper.log"

    @property
    def socket(self) -> Path:
        """``<home>/redis.sock``, or a path every process derives alike from the home's when
        that one is too long for a unix socket."""
        near = self.path / "redis.sock"
        if len(os.fsencode(near)) <= MAX_SOCKET_PATH:
            return near
        digest = hashlib.sha1(os.fsencode(self.path)).hexdigest()[:12]
        return _private_tmp() / f"{digest}.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def prepare(self) -> None:
        """Create the home (private, ignored by git) and its data directory."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.mkdir(mode=0o700, exist_ok=True)
            self.data.mkdir(mode=0o700, exist_ok=True)
            ignore = self.path / ".gitignore"
            if not ignore.exists():
                ignore.write_text("# created by corral: the shared server's files\n*\n")
            sockets = self.socket.parent
            if sockets != self.path:
                sockets.mkdir(mode=0o700, parents=True, exist_ok=True)
                _check_private(sockets)
        except OSError as exc:
            raise EmbeddedServerError(
                f"cannot create the server's home {self.path}: {exc}"
            ) from exc


@dataclass(frozen=True, slots=True)
class ServerState:
    """What the keeper writes to ``server.json`` once the server answers."""

    keeper_pid: int
    server_pid: int
    url: str
    binary: str
    started_at: float  # epoch seconds
    idle_seconds: float  # 0: never stopped for idleness
    home: str
    data_dir: str


@dataclass(frozen=True, slots=True)
class ServerStatus:
    """``corral server status``: the state file plus what the server says about itself."""

    running: bool
    home: str
    data_dir: str
    url: str
    keeper_pid: int | None = None
    server_pid: int | None = None
    binary: str | None = None
    version: str | None = None
    started_at: float | None = None
    uptime_seconds: int | None = None
    idle_seconds: float | None = None
    clients: int | None = None  # not counting the keeper and the asking process
    keys: int | None = None
    memory_bytes: int | None = None
    memory_human: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _private_tmp() -> Path:
    return Path("/tmp") / f"corral-{os.getuid()}"


def _check_private(directory: Path) -> None:
    """A shared socket directory must be ours alone, or another user could put a server there."""
    st = directory.stat()
    if st.st_uid != os.getuid() or st.st_mode & 0o077:
        raise EmbeddedServerError(
            f"{directory} must belong to you and be private (chmod 700); refusing to use it"
        )


def project_root(start: Path) -> Path:
    """The nearest ancestor of ``start`` (itself included) holding a project marker."""
    for directory in (start, *start.parents):
        if any((directory / marker).exists() for marker in PROJECT_MARKERS):
            return directory
    return start


def locate(environ: Mapping[str, str] | None = None, cwd: Path | None = None) -> ServerHome:
    """The home every process of this project computes alike: ``$CORRAL_HOME`` or
    ``<project root>/.corral``. Creates nothing."""
    env = os.environ if environ is None else environ
    chosen = env.get(ENV_HOME, "").strip()
    if chosen:
        return ServerHome(Path(chosen).expanduser().resolve())
    return ServerHome(project_root((cwd or Path.cwd()).resolve()) / ".corral")


def parse_idle(text: str, source: str = ENV_IDLE) -> timedelta:
    """Seconds (``900``) or a duration (``15m``); ``0`` means never."""
    text = text.strip()
    try:
        idle = timedelta(seconds=float(text))
    except ValueError:
        try:
            idle = parse_duration(text)
        except ConfigError:
            raise ConfigError(
                f"{source}={text!r} is not a duration (seconds, or e.g. 90s, 10m, 1h; 0: never)"
            ) from None
    if idle < timedelta(0):
        raise ConfigError(f"{source}={text!r} must not be negative")
    return idle


def idle_from_env(environ: Mapping[str, str] | None = None) -> timedelta:
    env = os.environ if environ is None else environ
    text = env.get(ENV_IDLE, "").strip()
    return parse_idle(text) if text else DEFAULT_IDLE


def describe_idle(seconds: float) -> str:
    if seconds <= 0:
        return "never stops by itself"
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"stops after {int(seconds // size)}{unit} idle"
    return f"stops after {seconds:g}s idle"


# -- locks and state ---------------------------------------------------------------------------


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[IO[str]]:
    """Hold an exclusive flock on ``path`` (blocking); released when the file is closed."""
    with open(path, "a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        yield fh


def keeper_alive(home: ServerHome) -> bool:
    """True while a keeper holds ``keeper.lock``: unlike a pid, this cannot be stale."""
    if not home.keeper_lock.exists():
        return False
    with open(home.keeper_lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EACCES):
                return True
            raise
        return False


def read_state(home: ServerHome) -> ServerState | None:
    try:
        raw = json.loads(home.state_file.read_text())
        return ServerState(**{f.name: raw[f.name] for f in fields(ServerState)})
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_state(home: ServerHome, state: ServerState) -> None:
    """Write ``server.json`` whole (rename), so a reader never sees half of it."""
    tmp = home.state_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(state), indent=2) + "\n")
    tmp.replace(home.state_file)


def clear_state(home: ServerHome, keeper_pid: int | None = None) -> None:
    """Remove ``server.json`` (only if it is ``keeper_pid``'s, when given)."""
    if keeper_pid is not None:
        state = read_state(home)
        if state is not None and state.keeper_pid != keeper_pid:
            return
    home.state_file.unlink(missing_ok=True)


def touch_handout(home: ServerHome) -> None:
    """Mark the server as just handed out: the keeper counts this as use, so it does not stop
    the server in the moment between a process finding it and connecting to it."""
    os.utime(home.lock)


def last_handout(home: ServerHome) -> float:
    try:
        return home.lock.stat().st_mtime
    except OSError:
        return 0.0


def server_command(binary: Path | str, home: ServerHome) -> list[str]:
    """The server on the home's unix socket only, persisted with AOF (fsync every second)."""
    return [
        str(binary),
        "--port",
        "0",
        "--unixsocket",
        str(home.socket),
        "--unixsocketperm",
        "700",
        "--dir",
        str(home.data),
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--save",
        "",
        "--daemonize",
        "no",
        "--loglevel",
        "notice",
        "--logfile",
        str(home.server_log),
    ]


# -- start, stop, status -----------------------------------------------------------------------


def admin_client(home: ServerHome, name: str | None = None) -> redis.Redis:
    """A plain client on the socket that does not retry: after SHUTDOWN, a retry would only
    wait on a socket that is gone."""
    return redis.Redis(
        unix_socket_path=str(home.socket),
        client_name=name,
        socket_timeout=10,
        retry=Retry(NoBackoff(), 0),
    )


def is_running(home: ServerHome) -> bool:
    return ping_server(home.socket, None)


def ensure_running(
    home: ServerHome | None = None, *, idle: timedelta | None = None
) -> tuple[ServerState, bool]:
    """The running server of ``home`` (default: this project's), started if needed; returns
    its state and whether this call started it. Two processes calling at once get one server."""
    home = home or locate()
    home.prepare()
    with _locked(home.lock):
        touch_handout(home)
        if keeper_alive(home) and not is_running(home):
            # Its keeper is stopping it (SIGTERM from elsewhere), or it hangs: give it time
            # rather than start a second server on the same data.
            with contextlib.suppress(EmbeddedServerError):
                _wait_for(lambda: is_running(home) or not keeper_alive(home), 10, "", home)
            if keeper_alive(home) and not is_running(home):
                raise EmbeddedServerError(
                    f"the shared server in {home.path} does not answer but its keeper is "
                    f"alive; see {home.server_log}, or `corral server stop`"
                )
        if is_running(home):
            # No state file only if its keeper was killed where PR_SET_PDEATHSIG does not
            # exist (macOS): the server is still this project's, so use it all the same.
            return read_state(home) or _orphan_state(home), False
        state = _spawn_keeper(home, idle_from_env() if idle is None else idle)
        touch_handout(home)
        home.stopped_marker.unlink(missing_ok=True)
        return state, True


def revive(home: ServerHome | None = None) -> bool:
    """For a client that lost the shared server: start it again, unless it was stopped on
    purpose (``corral server stop``). True if it is running now."""
    home = home or locate()
    if home.stopped_marker.exists():
        return False
    _, started = ensure_running(home)
    if started:
        log.warning("the shared server had stopped; started it again (%s)", home.url)
    return True


def _orphan_state(home: ServerHome) -> ServerState:
    return ServerState(0, 0, home.url, "", 0.0, 0.0, str(home.path), str(home.data))


def _spawn_keeper(home: ServerHome, idle: timedelta) -> ServerState:
    binary = find_server_binary()
    package_root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ)
    # The keeper runs from the home (so it pins no user directory) and must still import us.
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    for name in (ENV_REDIS_URL, ENV_EMBEDDED):
        env.pop(name, None)
    _trim(home.keeper_log)
    _trim(home.server_log)
    cmd = [sys.executable, "-m", "corral._keeper", str(home.path), str(idle.total_seconds())]
    with open(home.keeper_log, "ab") as keeper_log:
        proc = subprocess.Popen(
            [*cmd, str(binary)],
            stdin=subprocess.DEVNULL,
            stdout=keeper_log,
            stderr=keeper_log,
            cwd=home.path,
            env=env,
            start_new_session=True,  # not in the starter's process group: Ctrl-C there spares it
        )
    try:
        # The first process exits once the keeper (its forked child) has the server answering.
        code = proc.wait(READY_TIMEOUT + 10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        code = -1
    state = read_state(home)
    if code != 0 or state is None or not is_running(home):
        raise EmbeddedServerError(
            f"the shared server did not start ({binary}, home {home.path}):\n"
            f"{_tail(home.keeper_log)}\n{_tail(home.server_log)}".rstrip()
        )
    log.debug("shared server started: %s (keeper %d)", state.url, state.keeper_pid)
    return state


def stop(home: ServerHome | None = None, *, timeout: float = STOP_TIMEOUT + 10) -> bool:
    """Stop the shared server (its append-only file synced); False if it was not running."""
    home = home or locate()
    if not home.path.is_dir():
        return False
    with _locked(home.lock):
        home.stopped_marker.touch()
        state = read_state(home)
        if state is not None and keeper_alive(home):
            with contextlib.suppress(ProcessLookupError):
                os.kill(state.keeper_pid, signal.SIGTERM)
            _wait_for(lambda: not keeper_alive(home), timeout, "its keeper to exit", home)
            return True
        if is_running(home):  # a server whose keeper is gone (killed on a system without
            _shutdown_orphan(home)  # PR_SET_PDEATHSIG): ask the server itself
            _wait_for(lambda: not is_running(home), timeout, "the server to exit", home)
            clear_state(home)
            return True
        clear_state(home)  # stale: the keeper and the server are gone
        return False


def _shutdown_orphan(home: ServerHome) -> None:
    client = admin_client(home)
    try:
        client.shutdown()
    except redis.RedisError as exc:
        raise EmbeddedServerError(f"the server at {home.url} refused SHUTDOWN: {exc}") from exc
    finally:
        client.close()


def _wait_for(done: Callable[[], bool], timeout: float, what: str, home: ServerHome) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise EmbeddedServerError(
                f"timed out waiting for {what} ({home.path}); see {home.keeper_log}"
            )
        time.sleep(0.05)


def status(home: ServerHome | None = None) -> ServerStatus:
    """Is the server running, where, and what it holds. Starts nothing, creates nothing."""
    home = home or locate()
    stopped = ServerStatus(
        running=False, home=str(home.path), data_dir=str(home.data), url=home.url
    )
    state = read_state(home)
    if not is_running(home):
        return stopped
    client = admin_client(home)
    try:
        info: dict[str, Any] = client.info()
        me = client.client_id()
        others = [
            c
            for c in client.client_list()
            if c.get("name") != KEEPER_NAME and int(c.get("id", -1)) != me
        ]
    except redis.RedisError as exc:
        raise EmbeddedServerError(f"the shared server at {home.url} did not answer: {exc}") from exc
    finally:
        client.close()
    keys = sum(int(v.get("keys", 0)) for k, v in info.items() if k.startswith("db"))
    return replace(
        stopped,
        running=True,
        keeper_pid=state.keeper_pid if state else None,
        server_pid=int(info.get("process_id", 0)) or (state.server_pid if state else None),
        binary=state.binary if state else None,
        version=str(info.get("valkey_version") or info.get("redis_version") or "") or None,
        started_at=state.started_at if state else None,
        uptime_seconds=int(info.get("uptime_in_seconds", 0)),
        idle_seconds=state.idle_seconds if state else None,
        clients=len(others),
        keys=keys,
        memory_bytes=int(info.get("used_memory", 0)),
        memory_human=str(info.get("used_memory_human", "")),
    )


@functools.cache  # the notice is said once per process, however many Apps use the server
def announce(url: str, data_dir: str, idle_seconds: float) -> None:
    log.warning(
        "corral: no %s, using the project's shared server %s (data in %s; %s; "
        "stop it with `corral server stop`, refuse it with %s=0)",
        ENV_REDIS_URL,
        url,
        data_dir,
        describe_idle(idle_seconds),
        ENV_EMBEDDED,
    )


def shared_url() -> str:
    """The URL of this project's shared server, started if needed, announced once."""
    state, _ = ensure_running()
    announce(state.url, state.data_dir, state.idle_seconds)
    return state.url


# -- logs --------------------------------------------------------------------------------------


def _tail(path: Path, size: int = 2000) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return f"--- {path.name}:\n{text[-size:].strip()}" if text.strip() else ""


def _trim(path: Path, limit: int = 1 << 20) -> None:
    """Keep a log from growing without bound across many starts: drop it past ``limit``."""
    with contextlib.suppress(OSError):
        if path.stat().st_size > limit:
            path.unlink()
