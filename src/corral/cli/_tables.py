"""Tables for people and for grep: one line per row, ids and names never wrapped or cut.

At 80 columns (a pipe, a narrow SSH session) Rich's own layout wraps a job id over two or
three lines and drops or cuts columns, so an id can no longer be copied or grepped. Here the
columns that say *which* (ids, names, states) keep their full width; the ones that only
describe (group, error) give up width first and are cut with an ellipsis, down to a floor.
When even that does not fit, the table is printed wider than the terminal: its lines overflow
(a pager scrolls them, a terminal soft-wraps them) but every id stays whole on its line.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich import box
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.measure import Measurement
from rich.segment import Segments
from rich.table import Table
from rich.text import Text


@dataclass(frozen=True, slots=True)
class Column:
    """``floor`` None: never narrowed (ids, names); else the narrowest it may be cut to."""

    header: str
    floor: int | None = None
    justify: Literal["left", "right"] = "left"


def fit(natural: Sequence[int], floors: Sequence[int | None], room: int) -> list[int]:
    """Column widths within ``room``: the widest narrowable column gives up a cell at a time
    until the row fits or every narrowable column is at its floor."""
    widths = list(natural)
    excess = sum(widths) - room
    while excess > 0:
        narrowable = [
            i for i, floor in enumerate(floors) if floor is not None and widths[i] > floor
        ]
        if not narrowable:
            break
        widest = max(narrowable, key=lambda i: widths[i])
        widths[widest] -= 1
        excess -= 1
    return widths


def print_table(
    out: Console, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> None:
    """Print ``rows`` (plain text, never markup) under ``title`` as described above."""
    table, fits = fitted_table(out, title, columns, rows)
    out.print(table, crop=fits)


def fitted_table(
    out: Console, title: str, columns: Sequence[Column], rows: Sequence[Sequence[str]]
) -> tuple[RenderableType, bool]:
    """The table ``print_table`` prints (for a live view to show), and whether it fits the
    terminal (when not, it is pre-rendered wider: print it uncropped)."""
    natural = [
        max([cell_len(col.header), *(cell_len(row[i]) for row in rows)])
        for i, col in enumerate(columns)
    ]
    probe = _table(title, columns, natural, rows)
    unbounded = out.options.update_width(10**6)
    overhead = Measurement.get(out, unbounded, probe).maximum - sum(natural)
    widths = fit(natural, [c.floor for c in columns], out.width - overhead)
    table = _table(title, columns, widths, rows)
    needed = sum(widths) + overhead
    if needed <= out.width:
        return table, True
    # wider than the terminal: overflow rather than wrap an id
    return Segments(out.render(table, out.options.update_width(needed))), False


def _table(
    title: str, columns: Sequence[Column], widths: Sequence[int], rows: Sequence[Sequence[str]]
) -> Table:
    table = Table(
        title=Text(title),
        box=box.SIMPLE_HEAD,
        show_edge=False,
        pad_edge=False,
        collapse_padding=True,
    )
    for col, width in zip(columns, widths, strict=True):
        table.add_column(
            col.header, width=width, no_wrap=True, overflow="ellipsis", justify=col.justify
        )
    for row in rows:
        table.add_row(*(Text(cell) for cell in row))
    return table
