"""What the command line prints: tables that fit the terminal, JSON, and numbers.

Tables are plain text, one line per row, sized to the terminal's width
(``shutil.get_terminal_size``: the ``COLUMNS`` variable, else the terminal, else 80).
When a table is too wide, its *flexible* columns (names, places, errors) are shortened
with ``…``, the widest first, while ids, numbers, times and coordinates keep every
character; then the columns marked as optional are left out, the least useful first
(``--json`` always has everything); when even that cannot make it fit, each row is
printed as a block of ``name  value`` lines instead.  Coordinates keep six decimals (about 0.1 m).

``--json`` output is plain JSON on standard output, for machines.  A reader that stops
reading (``gpshub history export | head``) ends the command quietly: see
``quiet_stdout``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

from rich.cells import cell_len
from rich.console import Console

GAP = "  "
ELLIPSIS = "…"
COORD_DECIMALS = 6


class StdoutConsole(Console):
    """Rich's console for standard output, whose broken pipe is a ``BrokenPipeError``
    (rich's own answer is ``SystemExit(1)``), so ``main`` ends every command alike."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


def quiet_stdout() -> None:
    """After a broken pipe: point standard output at ``/dev/null``, so that flushing it
    at exit raises nothing (Python's advice for SIGPIPE)."""
    try:
        fd = sys.stdout.fileno()
    except (AttributeError, OSError, ValueError):  # replaced by a test's capture
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def terminal_width() -> int:
    return max(shutil.get_terminal_size().columns, 20)


# -- values ----------------------------------------------------------------------------
def coord(value: Any) -> str:
    """A latitude or longitude with six decimals; empty when unknown."""
    return "" if value is None else f"{float(value):.{COORD_DECIMALS}f}"


def number(value: Any, decimals: int = 1) -> str:
    """A measure (speed, distance) with at most ``decimals`` decimals; empty when unknown."""
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if isinstance(value, int) or float(value).is_integer():
        return str(int(value))
    return f"{value:.{decimals}f}".rstrip("0").rstrip(".")


def when(value: Any) -> str:
    """A time as ``2026-01-01T12:00:00Z`` (UTC, whole seconds); empty when unknown."""
    if value is None or value == "":
        return ""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def flag(value: Any) -> str:
    return "yes" if value else "no"


def listing(values: Iterable[Any] | None) -> str:
    return ",".join(str(v) for v in values or ())


def print_json(data: Any) -> None:
    """``data`` as indented JSON on standard output (times as ISO 8601 text)."""
    sys.stdout.write(json.dumps(data, indent=2, default=_json_default, ensure_ascii=False))
    sys.stdout.write("\n")
    sys.stdout.flush()


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value)


# -- tables ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Column:
    """A table column.  ``flexible`` ones may be shortened (with ``…``) to fit, down to
    ``min_width``; the others always show their values whole.  Columns with a ``drop``
    above 0 are left out when the table cannot fit otherwise, the highest first."""

    header: str
    align: Literal["left", "right"] = "left"
    flexible: bool = False
    min_width: int = 8
    drop: int = 0

    def optional(self, rank: int) -> Column:
        """This column, left out (before those of lower ``rank``) when space is short."""
        return replace(self, drop=rank)


def text(header: str, min_width: int = 8) -> Column:
    """A column of free text that may be shortened."""
    return Column(header, flexible=True, min_width=min_width)


def fixed(header: str) -> Column:
    """A column of short values shown whole (states, kinds, times)."""
    return Column(header)


def numeric(header: str) -> Column:
    """A right-aligned column of ids or numbers shown whole."""
    return Column(header, align="right")


def render_table(
    columns: Sequence[Column], rows: Iterable[Sequence[Any]], width: int | None = None
) -> list[str]:
    """The lines of a table no wider than ``width`` (default: the terminal's)."""
    width = width or terminal_width()
    cells = [[_one_line(v) for v in row] for row in rows]
    shown = list(range(len(columns)))
    while True:
        cols = [columns[i] for i in shown]
        natural = [
            max([cell_len(columns[i].header), *(cell_len(r[i]) for r in cells)]) for i in shown
        ]
        widths = _fit(cols, natural, width)
        droppable = [i for i in shown if columns[i].drop > 0]
        if widths is not None or not droppable:
            break
        shown.remove(max(droppable, key=lambda i: (columns[i].drop, i)))
    if widths is None:
        return _records(columns, cells, width)
    columns = cols
    cells = [[r[i] for i in shown] for r in cells]
    lines = [_line(columns, widths, [c.header for c in columns])]
    lines.append(GAP.join("-" * w for w in widths))
    lines.extend(_line(columns, widths, r) for r in cells)
    return lines


def print_table(
    columns: Sequence[Column], rows: Iterable[Sequence[Any]], *, empty: str = ""
) -> None:
    """Print a table on standard output; with no rows, ``empty`` on standard error."""
    rows = list(rows)
    if not rows and empty:
        print(empty, file=sys.stderr)
        return
    sys.stdout.write("".join(line + "\n" for line in render_table(columns, rows)))
    sys.stdout.flush()


def _one_line(value: Any) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.split()) if ("\n" in text or "\r" in text or "\t" in text) else text


def _fit(columns: Sequence[Column], widths: list[int], width: int) -> list[int] | None:
    """Column widths that fit ``width`` by shortening flexible columns, widest first;
    ``None`` when they cannot."""
    widths = list(widths)
    excess = sum(widths) + len(GAP) * (len(widths) - 1) - width
    while excess > 0:
        shrinkable = [
            i for i, c in enumerate(columns) if c.flexible and widths[i] > max(c.min_width, 2)
        ]
        if not shrinkable:
            return None
        widest = max(shrinkable, key=lambda i: widths[i])
        others = [widths[i] for i in shrinkable if i != widest]
        floor = max(columns[widest].min_width, 2, max(others, default=0))
        cut = max(1, min(excess, widths[widest] - floor))
        widths[widest] -= cut
        excess -= cut
    return widths


def _cut(text: str, width: int) -> str:
    """``text`` shortened to ``width`` cells, ending with ``…`` when shortened."""
    if cell_len(text) <= width:
        return text
    out = ""
    for ch in text:
        if cell_len(out + ch) > width - 1:
            break
        out += ch
    return out + ELLIPSIS


def _line(columns: Sequence[Column], widths: Sequence[int], values: Sequence[str]) -> str:
    parts = []
    for column, w, value in zip(columns, widths, values, strict=True):
        value = _cut(value, w)
        pad = " " * (w - cell_len(value))
        parts.append(pad + value if column.align == "right" else value + pad)
    return GAP.join(parts).rstrip()


def _records(columns: Sequence[Column], cells: Sequence[Sequence[str]], width: int) -> list[str]:
    """Each row as a block of ``header  value`` lines: for terminals too narrow for the
    table."""
    key_width = max(cell_len(c.header) for c in columns)
    room = max(width - key_width - len(GAP), 1)
    lines: list[str] = []
    for n, row in enumerate(cells):
        if n:
            lines.append("")
        for column, value in zip(columns, row, strict=True):
            head = column.header + " " * (key_width - cell_len(column.header))
            shown = _cut(value, room) if column.flexible else value
            lines.append((head + GAP + shown).rstrip())
    return lines
