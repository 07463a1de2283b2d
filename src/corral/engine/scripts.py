"""Loads ``lua/*.lua`` once (each prefixed with ``_lib.lua``) and runs them by SHA.

EVALSHA first; on NOSCRIPT (a restarted or failed-over server forgets its script cache) the
script is sent with EVAL, which also caches it again. Lua error codes map to exceptions here.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import NoScriptError, ResponseError

from corral.errors import ConfigError, CorralError, PayloadError

SCRIPT_NAMES = (
    "enqueue",
    "claim",
    "complete",
    "fail",
    "reschedule",
    "release",
    "heartbeat",
    "reap",
    "touch",
    "watch",
    "groups",
    "cancel",
    "remove",
    "promote",
    "replay",
    "reprioritize",
    "drain",
    "clean",
)

_ERROR_CODES: dict[str, type[CorralError]] = {
    "ERR_BAD_JOB": PayloadError,
    "ERR_BAD_GROUP": ConfigError,
    "ERR_BAD_STATE": ConfigError,
}


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str


def load_scripts() -> dict[str, Script]:
    lua = resources.files("corral.engine") / "lua"
    lib = (lua / "_lib.lua").read_text(encoding="utf-8")
    out: dict[str, Script] = {}
    for name in SCRIPT_NAMES:
        body = (lua / f"{name}.lua").read_text(encoding="utf-8")
        source = f"{lib}\n-- ==== {name}.lua ====\n{body}"
        out[name] = Script(name, source, hashlib.sha1(source.encode()).hexdigest())
    return out


def translate(exc: ResponseError) -> Exception:
    """Map a Lua ``redis.error_reply('CODE message')`` onto our exception tree."""
    text = str(exc)
    for code, cls in _ERROR_CODES.items():
        if text.startswith(code):
            return cls(text[len(code) :].strip())
    return exc


class ScriptRunner:
    """Runs named scripts against a client or queues them on a pipeline."""

    def __init__(self, scripts: dict[str, Script] | None = None) -> None:
        self.scripts = scripts or load_scripts()

    async def run(self, client: Redis, name: str, keys: list[str], args: list[Any]) -> Any:
        script = self.scripts[name]
        try:
            try:
                return await client.evalsha(script.sha, len(keys), *keys, *args)
            except NoScriptError:
                return await client.eval(script.source, len(keys), *keys, *args)
        except ResponseError as exc:  # from EVALSHA or from the EVAL fallback alike
            raise translate(exc) from None

    def queue(self, pipe: Pipeline, name: str, keys: list[str], args: list[Any]) -> None:
        script = self.scripts[name]
        pipe.evalsha(script.sha, len(keys), *keys, *args)

    async def run_pipeline(
        self, client: Redis, calls: list[tuple[str, list[str], list[Any]]]
    ) -> list[Any]:
        """Run several scripts in one round trip; NOSCRIPT replies are re-sent with EVAL in order
        (a command that got NOSCRIPT did not run, so re-sending it is safe)."""
        pipe = client.pipeline(transaction=False)
        for name, keys, args in calls:
            self.queue(pipe, name, keys, args)
        results: list[Any] = await pipe.execute(raise_on_error=False)
        for i, result in enumerate(results):
            if isinstance(result, NoScriptError):
                name, keys, args = calls[i]
                results[i] = await self.run(client, name, keys, args)
            elif isinstance(result, ResponseError):
                raise translate(result) from None
            elif isinstance(result, Exception):
                raise result
        return results
