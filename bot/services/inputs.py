"""What a user's file is, from its name and its bytes: for the model, and for a clear refusal.

Taskbot reads .csv, .tsv, .xlsx, .json, .parquet, .pdf, .docx and plain text (and images,
through pillow). The type is
sniffed from the content (magic bytes, the zip's members, UTF-8 text), the name only breaking
ties; a file of a kind it cannot read gets a clear answer before anything runs. The profile
(name, size, type, a spreadsheet's sheet names, a CSV's first lines) is kept with the run and
told to the model when it refines the task, so the code fits the real file.
"""

from __future__ import annotations

import html
import io
import json
import re
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from bot.services.errors import InvalidInput

READABLE = ".csv, .tsv, .xlsx, .json, .parquet, .pdf, .docx, plain text or images"
_PREVIEW_LINES = 5
_PREVIEW_CHARS = 600
_MAX_SHEETS = 20
_SHEET = re.compile(rb'<sheet\b[^>]*\bname="([^"]*)"')
_IMAGES = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"GIF8", "GIF"))
# Formats people upload that cannot be read here, by their first bytes, with what to do.
_REFUSED_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an old Office file: save it as .xlsx or .docx"),
    (b"\x1f\x8b", "a gzip archive: unpack it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive: unpack it first"),
    (b"Rar!", "a RAR archive: unpack it first"),
    (b"\x7fELF", "a program"),
    (b"MZ", "a Windows program"),
)  # fmt: skip


@dataclass(frozen=True)
class InputProfile:
    name: str
    size: int
    kind: str  # csv, tsv, xlsx, json, parquet, pdf, docx, text, binary
    detail: str  # sheet names, first lines, or ""

    def describe(self) -> str:
        lines = [f"The user's file: `{self.name}`, {_size(self.size)}, {self.kind}."]
        if self.detail:
            lines.append(self.detail)
        return "\n".join(lines)


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    if n < 2**20:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 2**20:.1f} MiB"


def _suffix(name: str) -> str:
    return PurePosixPath(name).suffix.lower()


def _text(data: bytes) -> str | None:
    sample = data[:65536]
    try:
        text = sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 4:  # not just a character cut at the sample's end
            return None
        text = sample[: exc.start].decode("utf-8")
    if "\x00" in text:
        return None
    return text.removeprefix("\ufeff")


def _zip_kind(data: bytes) -> tuple[str, str] | None:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        names = set(archive.namelist())
        if "xl/workbook.xml" in names:
            sheets = [
                html.unescape(s.decode("utf-8", "replace"))
                for s in _SHEET.findall(archive.read("xl/workbook.xml"))
            ]
            shown = ", ".join(f"'{s}'" for s in sheets[:_MAX_SHEETS])
            more = f" and {len(sheets) - _MAX_SHEETS} more" if len(sheets) > _MAX_SHEETS else ""
            return "xlsx (Excel workbook)", f"Sheets ({len(sheets)}): {shown}{more}."
        if "word/document.xml" in names:
            return "docx (Word document)", ""
    except (zipfile.BadZipFile, KeyError, OSError, RuntimeError):
        return None
    return None


def _first_lines(text: str) -> str:
    lines = text.splitlines()[:_PREVIEW_LINES]
    shown = "\n".join(line[:200] for line in lines)[:_PREVIEW_CHARS]
    return f"Its first lines:\n```\n{shown}\n```"


def profile(name: str, data: bytes) -> InputProfile:
    """The file's profile, or InvalidInput saying why Taskbot cannot read it."""
    size = len(data)
    if data.startswith(b"PK\x03\x04"):
        found = _zip_kind(data)
        if found is None:
            raise InvalidInput(f"`{name}` is a zip archive: unpack it first. I read {READABLE}.")
        return InputProfile(name, size, found[0], found[1])
    if data.startswith(b"%PDF-"):
        return InputProfile(name, size, "pdf", "Read its text with pypdf.")
    if data.startswith(b"PAR1"):
        return InputProfile(name, size, "parquet", "Read it with pandas.read_parquet.")
    for magic, image in _IMAGES:
        if data.startswith(magic):
            return InputProfile(name, size, f"image ({image})", "Open it with PIL.Image.open.")
    for magic, what in _REFUSED_MAGIC:
        if data.startswith(magic):
            raise InvalidInput(f"`{name}` looks like {what}. I read {READABLE}.")
    text = _text(data)
    suffix = _suffix(name)
    if text is None:
        return InputProfile(name, size, "binary (unknown type)", "")
    if suffix in (".json", ".jsonl", ".ndjson") or text.lstrip()[:1] in ("{", "["):
        kind = "json"
        try:
            json.loads(data)
        except ValueError:
            kind = "json lines" if suffix in (".jsonl", ".ndjson") else "text (not valid JSON)"
        return InputProfile(name, size, kind, _first_lines(text))
    first = text.split("\n", 1)[0]
    if suffix == ".tsv" or (suffix != ".csv" and first.count("\t") >= 1):
        return InputProfile(name, size, "tsv (tab-separated)", _first_lines(text))
    if suffix == ".csv" or (first.count(",") >= 1 and first.count(",") == _second_count(text)):
        delimiter = ";" if first.count(";") > first.count(",") else ","
        return InputProfile(name, size, f"csv (delimiter '{delimiter}')", _first_lines(text))
    return InputProfile(name, size, "plain text (UTF-8)", _first_lines(text))


def _second_count(text: str) -> int:
    lines = text.split("\n", 2)
    return lines[1].count(",") if len(lines) > 1 else -1


def safe_name(name: str | None) -> str:
    """A run's input file name as stored and shown: its last path part, of plain characters."""
    base = (name or "input").replace("\\", "/").rsplit("/", 1)[-1].strip()
    cleaned = "".join(c for c in base if c.isalnum() or c in "._- ")[:100].strip(". ")
    return cleaned or "input"
