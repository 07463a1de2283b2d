"""Instructions per job in the worker and producer processes, by callgrind (which repeats
exactly, whatever else the machine is doing; wall clock on a shared VM moves by 10-40%).

    python -m bench.instructions                 # worker drain and producer enqueues, 2,000 jobs
    python -m bench.instructions --jobs 4000 --role worker

Each role runs under ``valgrind --tool=callgrind`` twice, with N and 2N jobs, and the
difference divided by N is the cost of one job with start-up cancelled out. The server is a
private one started here (not measured). Needs valgrind.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

from corral.embedded import EmbeddedServer, ServerOptions, free_port

ROLES = ("worker", "producer-bulk", "producer-single")

PREPARE = """
import asyncio, sys
from corral import App
from corral.loop import run
app = App.from_env()
@app.job(queue="bench")
async def noop(i: int) -> None:
    return None
async def main(n):
    async with app:
        for start in range(0, n, 1000):
            await app.enqueue_many([noop.prepare(i) for i in range(start, min(n, start + 1000))])
run(main(int(sys.argv[1])))
"""

MEASURED = {
    "worker": """
import sys
from corral import App, Worker
from corral.loop import run
app = App.from_env()
@app.job(queue="bench")
async def noop(i: int) -> None:
    return None
async def main():
    async with app:
        await Worker(app, ["bench"], concurrency=100, burst=True).run()
run(main())
""",
    "producer-bulk": PREPARE,
    "producer-single": """
import sys
from corral import App
from corral.loop import run
app = App.from_env()
@app.job(queue="bench")
async def noop(i: int) -> None:
    return None
async def main(n):
    async with app:
        for i in range(n):
            await noop.enqueue(i)
run(main(int(sys.argv[1])))
""",
}


def _instructions(script: str, n: int, env: dict[str, str], out: Path) -> int:
    cmd = [
        "valgrind",
        "--tool=callgrind",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-c",
        script,
        str(n),
    ]
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    text = out.read_text(errors="replace")
    match = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
    if match is None:
        raise RuntimeError(f"no totals in {out}")
    return int(match.group(1))


def per_job(role: str, jobs: int, url: str) -> float:
    counts = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in (jobs, 2 * jobs):
            env = {
                **os.environ,
                "CORRAL_REDIS_URL": url,
                "CORRAL_PREFIX": "i" + uuid.uuid4().hex[:8],
            }
            if role == "worker":
                subprocess.run([sys.executable, "-c", PREPARE, str(n)], env=env, check=True)
            counts.append(_instructions(MEASURED[role], n, env, Path(tmp) / f"{role}-{n}.out"))
    return (counts[1] - counts[0]) / jobs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--role", choices=ROLES, action="append")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is needed (apt-get install valgrind)")
    with EmbeddedServer(ServerOptions(port=free_port())) as server:
        for role in args.role or ROLES:
            print(
                f"{role}: {per_job(role, args.jobs, server.url) / 1000:.1f}k instructions per job",
                flush=True,
            )


if __name__ == "__main__":
    main()
