"""Records as tables: Slack's table block within its limits, CSV, the terminal."""

from __future__ import annotations

import csv
import io

from bot.services.tables import as_table, format_cell, terminal_table, to_csv
from bot.slack.tables import MAX_COLUMNS, MAX_ROWS, MAX_TABLE_CHARS, table_block, table_note

RECORDS = [
    {"region": "North", "sales": 12345, "share": 0.41},
    {"region": "South", "sales": 980, "share": 0.2},
    {"region": "East <@U123> @here", "sales": None, "share": 0.004},
    {"region": "West", "sales": -5, "share": 1.5},
    {"region": "=cmd|' /C calc'!A0", "sales": 7, "share": 0.0},
]


def test_flat_records_are_a_table_and_other_json_is_not() -> None:
    table = as_table(RECORDS)
    assert table is not None
    assert table.columns == ("region", "sales", "share")
    assert table.numeric == (False, True, True)
    for value in ([], [1, 2], [{"a": {"nested": 1}}], {"a": 1}, [{}], [{"a": [1]}]):
        assert as_table(value) is None, value
    assert as_table([{"a": True}, {"a": False}]).numeric == (False,)  # type: ignore[union-attr]


def test_cells_are_formatted_for_reading() -> None:
    assert [format_cell(v) for v in (12345, 0.41, 0.004, 0.0, None, True, "x")] == [
        "12,345", "0.41", "0.004", "0.00", "", "true", "x",
    ]  # fmt: skip


def test_five_records_are_one_table_block_numbers_right_aligned() -> None:
    table = as_table(RECORDS)
    assert table is not None
    shown = table_block(table)
    assert shown.complete and shown.csv is None
    block = shown.block
    assert block["type"] == "table"
    rows = [[c["text"] for c in r] for r in block["rows"]]
    assert rows[0] == ["region", "sales", "share"]
    assert rows[1] == ["North", "12,345", "0.41"]
    assert rows[3] == ["East <@U123> @here", " ", "0.004"]  # raw_text: shown as typed
    assert all(c["type"] == "raw_text" and c["text"] for r in block["rows"] for c in r)
    assert block["column_settings"][1] == {"align": "right"}
    assert block["column_settings"][2] == {"align": "right"}
    assert "align" not in block["column_settings"][0]
    assert table_note(table, shown) == "5 rows by 3 columns"


def test_a_table_over_the_limits_is_cut_and_the_full_data_attached_as_csv() -> None:
    wide = [{f"c{i}": n * i for i in range(25)} for n in range(150)]
    table = as_table(wide)
    assert table is not None
    shown = table_block(table)
    assert not shown.complete and shown.csv is not None
    assert len(shown.block["rows"]) <= MAX_ROWS
    assert all(len(r) == MAX_COLUMNS for r in shown.block["rows"])
    assert len(shown.block["column_settings"]) == MAX_COLUMNS
    full = list(csv.reader(io.StringIO(shown.csv.decode())))
    assert len(full) == 151 and len(full[0]) == 25 and full[150][24] == str(149 * 24)
    assert "the full data is attached as result.csv" in table_note(table, shown)
    long_text = as_table([{"t": "x" * 900} for _ in range(60)])
    assert long_text is not None
    cut = table_block(long_text)
    assert sum(len(c["text"]) for r in cut.block["rows"] for c in r) <= MAX_TABLE_CHARS
    assert not cut.complete


def test_csv_keeps_numbers_exact_and_defuses_formulas() -> None:
    table = as_table(RECORDS)
    assert table is not None
    lines = list(csv.reader(io.StringIO(to_csv(table).decode())))
    assert lines[1] == ["North", "12345", "0.41"]
    assert lines[5][0].startswith("'=")
    assert lines[4][1] == "-5"


def test_terminal_table_aligns_numbers_right() -> None:
    table = as_table(RECORDS)
    assert table is not None
    text = terminal_table(table)
    lines = text.splitlines()
    assert lines[0].startswith("┌") and lines[-1].startswith("└")
    assert lines[1].split("│")[1].strip() == "region"
    north = next(line for line in lines if "North" in line)
    west = next(line for line in lines if "West" in line)
    assert north.index("12,345") + len("12,345") == west.index("-5") + len("-5")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_cli_prints_a_real_table_at_a_terminal_and_json_down_a_pipe() -> None:
    import json

    from bot.roles.cli_run import write_result
    from tests.unit.test_run_readers import _view

    view = _view(result=json.dumps(RECORDS).encode())
    tty, err = _Terminal(), io.StringIO()
    write_result(view, out=tty, err=err)
    assert "│ North " in tty.getvalue() and "12,345" in tty.getvalue()
    assert "(5 rows, 3 columns" in err.getvalue()
    pipe = io.StringIO()
    write_result(view, out=pipe, err=io.StringIO())
    assert json.loads(pipe.getvalue()) == RECORDS
