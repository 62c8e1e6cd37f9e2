"""The user's file sniffed for the model, and a clear answer for what cannot be read."""

from __future__ import annotations

import io
import json

import pandas as pd
import pytest

from bot.services.errors import InvalidInput
from bot.services.inputs import profile


def _xlsx() -> bytes:
    book = io.BytesIO()
    with pd.ExcelWriter(book) as writer:
        pd.DataFrame({"x": [1]}).to_excel(writer, sheet_name="Orders", index=False)
        pd.DataFrame({"y": [1]}).to_excel(writer, sheet_name="Q3 <returns>", index=False)
    return book.getvalue()


def test_a_spreadsheet_is_named_with_its_sheets() -> None:
    found = profile("book.bin", _xlsx())  # the content decides, not the name
    assert found.kind.startswith("xlsx")
    assert found.detail == "Sheets (2): 'Orders', 'Q3 <returns>'."
    text = found.describe()
    assert "`book.bin`" in text and "KiB" in text


def test_a_csv_shows_its_first_lines_and_delimiter() -> None:
    data = b"month;sales\nJan;3\nFeb;5\n" + b"".join(b"x;%d\n" % i for i in range(50))
    found = profile("sales.csv", data)
    assert found.kind == "csv (delimiter ';')"
    assert "month;sales\nJan;3" in found.detail and "x;10" not in found.detail
    assert profile("t.tsv", b"a\tb\n1\t2\n").kind.startswith("tsv")
    assert profile("data", b"a,b\n1,2\n").kind.startswith("csv")


def test_the_other_readable_kinds() -> None:
    assert profile("d.json", json.dumps([{"a": 1}]).encode()).kind == "json"
    assert profile("d.pdf", b"%PDF-1.7\n...").kind == "pdf"
    assert profile("d.parquet", b"PAR1....PAR1").kind == "parquet"
    assert profile("notes.txt", "héllo\nwörld\n".encode()).kind == "plain text (UTF-8)"
    assert profile("blob.txt", b"\x00\x01\x02\xff").kind == "binary (unknown type)"
    assert profile("photo", b"\x89PNG\r\n\x1a\n" + b"\x00" * 16).kind == "image (PNG)"


@pytest.mark.parametrize(
    ("data", "says"),
    [
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64, "save it as .xlsx or .docx"),
        (b"PK\x03\x04" + b"\x00" * 64, "zip archive"),
        (b"\x1f\x8b\x08\x00", "gzip"),
    ],
)
def test_what_cannot_be_read_gets_a_clear_answer(data: bytes, says: str) -> None:
    with pytest.raises(InvalidInput) as refused:
        profile("upload.xls", data)
    assert says in str(refused.value) and ".csv, .tsv, .xlsx" in str(refused.value)
