"""Slack's Block Kit ``table`` block for a run's records, within the block's limits.

From Slack's reference (docs.slack.dev/reference/block-kit/blocks/table-block) and what apps
meet in practice: at most 100 rows (the header included) of at most 20 cells, one table per
message, sent in the message's ``attachments``; ``raw_text`` cells must not be empty; Slack
rejects a table whose cells hold more than 10,000 characters together. What does not fit is
cut here and the full data goes with the message as CSV.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.services.tables import Table, format_cell, to_csv

MAX_ROWS = 100  # the header row included
MAX_COLUMNS = 20
MAX_TABLE_CHARS = 10_000  # all cells of the table together
MAX_CELL_CHARS = 200  # ours: a cell longer than this is cut (the CSV keeps it whole)
_CONTROLS = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+")

Block = dict[str, Any]


@dataclass(frozen=True)
class SlackTable:
    block: Block
    shown_rows: int
    shown_columns: int
    complete: bool  # every row, column and character is in the block
    csv: bytes | None  # the full data, when the block is not complete


def _cell(text: str, *, limit: int = MAX_CELL_CHARS) -> tuple[str, bool]:
    """raw_text is shown as typed (no mrkdwn, no mentions); controls and line breaks go."""
    flat = _CONTROLS.sub(" ", text).strip() or " "
    if len(flat) <= limit:
        return flat, False
    return flat[: limit - 1] + "…", True


def table_block(table: Table) -> SlackTable:
    columns = len(table.columns)
    width = min(columns, MAX_COLUMNS)
    cut = columns > width
    grid: list[list[str]] = []
    used = 0
    for raw in [table.columns, *(tuple(format_cell(v) for v in r) for r in table.rows)]:
        if len(grid) == MAX_ROWS:
            cut = True
            break
        cells = []
        for value in raw[:width]:
            text, shortened = _cell(str(value))
            cut |= shortened
            cells.append(text)
        size = sum(len(c) for c in cells)
        if used + size > MAX_TABLE_CHARS and len(grid) > 1:
            cut = True
            break
        used += size
        grid.append(cells)
    block: Block = {
        "type": "table",
        "column_settings": [
            {"align": "right"} if table.numeric[i] else {"is_wrapped": True} for i in range(width)
        ],
        "rows": [[{"type": "raw_text", "text": c} for c in r] for r in grid],
    }
    return SlackTable(block, len(grid) - 1, width, not cut, to_csv(table) if cut else None)


def table_note(table: Table, shown: SlackTable) -> str:
    rows, columns = table.shape
    note = f"{rows:,} row{'s' * (rows != 1)} by {columns} column{'s' * (columns != 1)}"
    if not shown.complete:
        note += (
            f"; showing {shown.shown_rows:,} rows by {shown.shown_columns} columns, "
            "the full data is attached as result.csv"
        )
    return note
