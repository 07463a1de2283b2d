"""The connection side of an App: settings, one Engine per event loop, the portal that lets sync
code call the async API, and the server URL (configured, or the project's shared server).

Handles (jobs, queues, dead letters) hold a Client, not the App: they need connections, not the
job registry, and so the App can import them without an import circle.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref

from corral.engine import Engine
from corral.engine.connection import make_client
from corral.engine.probe import probe
from corral.engine.transport import Transport
from corral.errors import ConfigError, EmbeddedServerError
from corral.portal import Portal
from corral.settings import EMBEDDED_REFUSED, Settings, parse_redis_url

log = logging.getLogger(__name__)

REVIVE_PAUSE_S = 10.0


class Client:
    """Connections for one App (cheap until first used)."""

    def __init__(self, settings: Settings, name: str = "corral") -> None:
        self._settings = settings
        self.name = name
        self.portal = Portal(f"{name}-portal")
        self._engines: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Engine] = (
            weakref.WeakKeyDictionary()
        )
        self._shared_url: str | None = None
        self._lock = threading.Lock()
        self._recent: tuple[weakref.ref[asyncio.AbstractEventLoop], Engine] | None = None
        self._revive_failed_at = 0.0  # monotonic time of the last failed revive

    @property
    def settings(self) -> Settings:
        return self._settings

    def configure(self, settings: Settings) -> None:
        """Replace the settings; refused once connected."""
        if self._engines or self._shared_url is not None:
            raise ConfigError("configure() must be called before the App connects")
        self._settings = settings

    def use(self, engine: Engine) -> None:
        """Bind ``engine`` to the running event loop instead of connecting: the seam where
        unit tests put an in-memory fake (see ``engine/ports.py``)."""
        self._engines[asyncio.get_running_loop()] = engine
        self._recent = None

    def forget(self) -> None:
        """Drop the engines of event loops that are gone without closing them (their sockets
        went with their loop): for test suites that run each test on a new loop."""
        self._engines.clear()
        self._recent = None

    @property
    def redis_url(self) -> str:
        """The configured URL, or the shared server's (started if no process has yet).
        Raises ConfigError when there is no URL and the embedded server is refused."""
        if self._settings.redis_url:
            return self._settings.redis_url
        if not self._settings.embedded:
            raise ConfigError(EMBEDDED_REFUSED)
        with self._lock:
            if self._shared_url is None:
                from corral.devserver import shared_url  # POSIX-only (flock), needed only here

                self._shared_url = shared_url()
            return self._shared_url

    def current_engine(self) -> Engine | None:
        """The running loop's Engine if it exists already: ``engine()`` without a coroutine,
        for the hot path (the last loop's is remembered, so no weak-dict lookup either)."""
        loop = asyncio.get_running_loop()
        recent = self._recent
        if recent is not None and recent[0]() is loop:
            return recent[1]
        engine = self._engines.get(loop)
        if engine is not None:
            self._recent = (weakref.ref(loop), engine)
        return engine

    async def engine(self) -> Engine:
        """The Engine bound to the running event loop (created on first use)."""
        loop = asyncio.get_running_loop()
        engine = self._engines.get(loop)
        if engine is not None:
            return engine
        settings = self._settings
        url = (
            settings.redis_url
            if settings.redis_url
            else await asyncio.to_thread(lambda: self.redis_url)  # may start the shared server
        )
        target = parse_redis_url(url)
        # one PING first: a wrong URL fails here, at once and in one line
        await probe(target, retries=settings.connect_retries, name=self.name)
        engine = self._engines.get(loop)  # another coroutine may have made it meanwhile
        if engine is None:
            engine = Engine(
                make_client(target, retries=settings.connect_retries, name=self.name),
                Transport(target, name=self.name, retries=settings.connect_retries),
                settings.prefix,
                where=target.redacted,
            )
            if not settings.redis_url:
                engine.revive = self._revive_shared
            self._engines[loop] = engine
        return engine

    async def _revive_shared(self) -> bool:
        """The shared server stopped under us (killed, crashed, not ``corral server stop``):
        start it again, so a worker or a producer carries on (its jobs are in the AOF).
        After a failed start, wait a while before trying again."""
        if time.monotonic() - self._revive_failed_at < REVIVE_PAUSE_S:
            return False
        from corral.devserver import revive  # POSIX-only (flock), needed only here

        try:
            return await asyncio.to_thread(revive)
        except EmbeddedServerError as exc:
            self._revive_failed_at = time.monotonic()
            log.error("the shared server stopped and could not be started again: %s", exc)
            return False

    async def close(self) -> None:
        """Close this loop's connection (the shared server stays, for the other processes)."""
        loop = asyncio.get_running_loop()
        engine = self._engines.pop(loop, None)
        self._recent = None
        if engine is not None:
            await engine.close()
        # The sync API's connection lives on the portal's loop: close it there, or the portal
        # thread and its connection would outlive the App.
        portal_loop = self.portal.loop
        portal_engine = None if portal_loop is None else self._engines.pop(portal_loop, None)
        if portal_engine is not None and portal_loop is not None and portal_loop is not loop:
            closing = asyncio.run_coroutine_threadsafe(portal_engine.close(), portal_loop)
            await asyncio.wrap_future(closing)
        if not self._engines:
            self.portal.stop()
