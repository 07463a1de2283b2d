"""`enqueue` is checked by the type checker against the job function's signature (ParamSpec),
``with_options`` keyword by keyword, and calling a job function directly gives its exact return
type."""

from __future__ import annotations

from pathlib import Path

from mypy import api

SNIPPET = """
from datetime import timedelta
from pydantic import BaseModel
from corral import App, JobHandle

app = App()

class Order(BaseModel):
    shop: str

@app.job(queue="orders")
async def charge(order: Order, cents: int) -> str:
    return order.shop

@app.job
def plain(x: int) -> float:
    return x / 2

async def good() -> None:
    handle: JobHandle[str] = await charge.enqueue(Order(shop="a"), cents=5)
    result: str = await handle.result(timeout=1)
    other: JobHandle[float] = await plain.with_options(priority=1).enqueue(3)
    later = charge.with_options(delay=timedelta(seconds=5), job_id="o-1", timeout=None)
    again: JobHandle[str] = await later.enqueue(Order(shop="a"), cents=5)
    direct: str = await charge(Order(shop="a"), cents=5)
    half: float = plain(3)

async def bad() -> None:
    await charge.enqueue(Order(shop="a"), cents="five")
    await charge.enqueue(shop="a")
    h = await plain.enqueue(1)
    wrong: int = await h.result()
    charge.with_options(colour="red")
    charge.with_options(priority="high")
    charge.with_options(delay=5)
    not_a_str: str = plain(3)
"""


def test_enqueue_is_checked_against_the_signature(tmp_path: Path) -> None:
    path = tmp_path / "typed_jobs.py"
    path.write_text(SNIPPET)
    out, err, code = api.run(
        [str(path), "--strict", "--no-incremental", "--cache-dir", str(tmp_path / ".mypy")]
    )
    errors = [line for line in out.splitlines() if ": error:" in line]
    lines = {int(line.split(":")[1]) for line in errors}
    bad_start = SNIPPET.splitlines().index("async def bad() -> None:") + 1
    assert code == 1, out + err
    assert all(n > bad_start for n in lines), f"good code flagged: {errors}"
    # wrong argument type, unknown keyword / missing argument, wrong result type, unknown
    # option, mistyped options, wrong return type of a direct call
    flagged = {bad_start + n for n in (1, 2, 4, 5, 6, 7, 8)}
    assert lines == flagged, errors
