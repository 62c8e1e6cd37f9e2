"""A list of flat records as a table: columns, formatted cells, CSV, a terminal table.

Pure functions over a run's JSON result; each edge renders the same ``Table`` its own way
(Slack's ``table`` block, the terminal, the API's ``table`` field).
"""

from __future__ import annotations

import csv
import io
import math
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

MAX_RECORDS = 10_000  # longer lists are not treated as tables (they stay JSON)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class Table:
    columns: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]  # raw JSON values, None where a record lacks a column
    numeric: tuple[bool, ...]  # per column: every present value is a number

    @property
    def shape(self) -> tuple[int, int]:
        return len(self.rows), len(self.columns)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def as_table(value: Any) -> Table | None:
    """The table a JSON value is, when it is a non-empty list of flat records; else None."""
    if not isinstance(value, list) or not 0 < len(value) <= MAX_RECORDS:
        return None
    if not all(isinstance(row, Mapping) and row for row in value):
        return None
    if any(isinstance(v, Mapping | list) for row in value for v in row.values()):
        return None
    columns: dict[str, None] = {}
    for row in value:
        columns.update(dict.fromkeys(str(k) for k in row))
    names = tuple(columns)
    rows = tuple(tuple(row.get(name) for name in names) for row in value)
    numeric = tuple(
        any(r[i] is not None for r in rows) and all(r[i] is None or _is_number(r[i]) for r in rows)
        for i in range(len(names))
    )
    return Table(names, rows, numeric)


def format_cell(value: Any) -> str:
    """A cell as people read it: thousands separated, floats to two places (or 3 significant
    digits when smaller), booleans and missing values spelt out."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value == 0 or abs(value) >= 0.01:
            return f"{value:,.2f}"
        return f"{value:.3g}"
    return str(value)


def to_csv(table: Table) -> bytes:
    """The full data, exact values, as CSV; text that a spreadsheet would run as a formula is
    quoted with a leading apostrophe (numbers are left alone)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([_csv_text(c) for c in table.columns])
    for row in table.rows:
        writer.writerow(
            ["" if v is None else v if _is_number(v) else _csv_text(format_cell(v)) for v in row]
        )
    return buffer.getvalue().encode("utf-8")


def _csv_text(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_START) else text


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def _fit(text: str, width: int) -> str:
    text = " ".join(text.split())  # no newlines or tabs inside a cell
    if _width(text) <= width:
        return text
    while _width(text) > width - 1:
        text = text[:-1]
    return text + "…"


def terminal_table(table: Table, *, max_width: int = 30, max_rows: int = 200) -> str:
    """A boxed text table: headers, a rule, numbers right-aligned, long cells cut."""
    head = [_fit(c, max_width) for c in table.columns]
    body = [[_fit(format_cell(v), max_width) for v in row] for row in table.rows[:max_rows]]
    widths = [max([_width(h)] + [_width(r[i]) for r in body]) for i, h in enumerate(head)]

    def line(cells: Sequence[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            pad = " " * (widths[i] - _width(cell))
            out.append(pad + cell if table.numeric[i] else cell + pad)
        return "│ " + " │ ".join(out) + " │"

    rule = "─┼─".join("─" * w for w in widths)
    lines = [
        "┌─" + "─┬─".join("─" * w for w in widths) + "─┐",
        line(head),
        "├─" + rule + "─┤",
        *(line(r) for r in body),
        "└─" + "─┴─".join("─" * w for w in widths) + "─┘",
    ]
    rows, _ = table.shape
    if rows > max_rows:
        lines.append(f"({rows - max_rows:,} more rows)")
    return "\n".join(lines)
