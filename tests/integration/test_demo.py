"""``corral demo`` on a server that has users: it writes under its own prefix and leaves
nothing behind, also when interrupted."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable

import redis

from corral.embedded import EmbeddedServer


def _snapshot(client: redis.Redis) -> dict[str, object]:
    """Every key with its type and content (the user's data must be untouched)."""
    out: dict[str, object] = {}
    for key in sorted(client.scan_iter(count=1000)):
        kind = client.type(key)
        if kind == "set":
            out[key] = ("set", sorted(client.smembers(key)))  # type: ignore[arg-type]
        elif kind == "string":
            out[key] = ("string", client.get(key))
        else:
            out[key] = (kind, client.dump(key))
    return out


def _users_queue(client: redis.Redis) -> None:
    """A user's queue named like the demo's: what a worker of theirs would serve."""
    client.sadd("corral:queues", "recipes")
    client.hset("corral:{recipes}:j:0P8users-own-job00", mapping={"n": "sync", "st": "waiting"})
    client.set("corral:{recipes}:d:0P8users-own-job00", '{"shop": "mine"}')
    client.zadd("corral:{recipes}:w:", {"0P8users-own-job00": 1})


def _env(server: EmbeddedServer) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "CORRAL_PREFIX"}
    env["CORRAL_REDIS_URL"] = server.url
    return env


def test_demo_leaves_the_users_queues_alone_and_cleans_up(
    fresh_server: Callable[..., EmbeddedServer],
) -> None:
    server = fresh_server()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    _users_queue(client)
    before = _snapshot(client)
    proc = subprocess.run(
        [sys.executable, "-m", "corral", "demo", "--jobs", "24"],
        env=_env(server),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "every job ended" in proc.stdout
    assert "corral-demo-" in proc.stdout  # it says where its keys are
    assert _snapshot(client) == before
    client.close()


def test_interrupted_demo_cleans_up(fresh_server: Callable[..., EmbeddedServer]) -> None:
    server = fresh_server()
    client = redis.Redis.from_url(server.url, decode_responses=True)
    _users_queue(client)
    before = _snapshot(client)
    demo = subprocess.Popen(
        [sys.executable, "-m", "corral", "demo", "--jobs", "2000", "--concurrency", "2"],
        env=_env(server),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while not any(k.startswith("corral-demo-") for k in client.scan_iter(count=1000)):
        assert time.monotonic() < deadline and demo.poll() is None, "the demo never wrote"
        time.sleep(0.05)
    demo.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = demo.communicate(timeout=60)
    assert demo.returncode != 0
    assert "Traceback" not in err or "KeyboardInterrupt" in err
    assert _snapshot(client) == before, out[-1000:] + err[-2000:]
    client.close()
