"""What a run produced, made storable before it is stored and readable however it was stored.

Everything here is untrusted: the run writes its own result header (error type, message,
traceback), its streams and its file names. Storing must never fail on their content (a NUL is
refused by PostgreSQL, a lone surrogate by SQLite's UTF-8 encoder, an over-long string by a
``String(n)`` column), and every stored JSON result is valid, finite JSON of bounded depth, so
each reader can show it. Readers still go through ``load_json_result``: rows stored before
these rules, or by another version, may hold anything.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from storage.kinds import RunStatus


@dataclass(frozen=True)
class OutputFileView:
    name: str
    size: int
    content: bytes


@dataclass(frozen=True)
class RunOutcome:
    """What the sandbox reports; the worker translates its own result into this."""

    status: RunStatus
    result_kind: str = "none"
    result: bytes = b""
    result_truncated: bool = False
    stdout: str = ""
    stderr: str = ""
    error_type: str | None = None
    error_message: str | None = None
    traceback_tail: str | None = None
    killed_reason: str | None = None
    duration_seconds: float = 0.0
    files: tuple[OutputFileView, ...] = ()
    cpu_seconds: float = 0.0


MAX_RESULT_DEPTH = 64
"""JSON results nested deeper than this are kept as text (readers recurse to print them)."""

ERROR_TYPE_LIMIT = 200  # runs.error_type is String(200)
KILLED_REASON_LIMIT = 32  # runs.killed_reason is String(32)
FILE_NAME_LIMIT = 255  # run_files.name is String(255)
ERROR_MESSAGE_LIMIT = 4000
TRACEBACK_LIMIT = 8000
STREAM_LIMIT = 1 << 20  # stdout, stderr: the sandbox keeps far less; this is a backstop
RESULT_LIMIT = 1 << 20  # the result, and all output files together: backstops too

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
_ONE_LINE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]+")


def storable_text(text: str, *, limit: int) -> str:
    """No NUL, no lone surrogate, at most ``limit`` characters (cut marked with an ellipsis)."""
    cleaned = _UNSTORABLE.sub("\ufffd", text)
    if len(cleaned) > limit:
        cleaned = cleaned[: max(0, limit - 1)] + "…"
    return cleaned


def storable_line(text: str, *, limit: int) -> str:
    """As ``storable_text``, and on one line: control characters become one space each run."""
    return storable_text(_ONE_LINE.sub(" ", text).strip(), limit=limit)


def storable_file_name(name: str) -> str:
    """A file name that fits the column: controls replaced, the middle cut when too long."""
    cleaned = _UNSTORABLE.sub("\ufffd", _ONE_LINE.sub("_", name)) or "_"
    if len(cleaned) <= FILE_NAME_LIMIT:
        return cleaned
    keep = (FILE_NAME_LIMIT - 1) // 2
    return cleaned[:keep] + "…" + cleaned[-keep:]


def json_depth(value: object) -> int:
    """Nesting depth of a decoded JSON value (a scalar is 0), without recursion."""
    deepest = 0
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            deepest = max(deepest, depth + 1)
            stack.extend((v, depth + 1) for v in item)
    return deepest


def _finite(value: object) -> object:
    """NaN and +-Infinity (not JSON) become null, as pandas' own JSON writer does."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


def load_json_result(data: bytes) -> tuple[bool, Any]:
    """(True, value) for a JSON result any reader can print; (False, None) otherwise.

    Non-finite numbers become null; values deeper than ``MAX_RESULT_DEPTH``, cut-off or
    otherwise invalid JSON are refused (show them as text)."""
    try:
        value = json.loads(data, parse_constant=lambda _name: None)
    except (ValueError, RecursionError, MemoryError):
        return False, None
    if json_depth(value) > MAX_RESULT_DEPTH:
        return False, None
    return True, _finite(value)


def storable_result(kind: str, data: bytes, *, truncated: bool) -> tuple[str, bytes]:
    """(kind, bytes) to store: a JSON result that is cut, too deep or invalid becomes text;
    none is over ``RESULT_LIMIT`` (the caller marks a cut result truncated)."""
    if kind not in ("json", "text", "bytes", "none"):
        kind = "bytes"
    if len(data) > RESULT_LIMIT:
        data, truncated = data[:RESULT_LIMIT], True
    if kind != "json":
        return kind, data
    if truncated:
        return "text", data
    ok, value = load_json_result(data)
    if not ok:
        return "text", data
    text = json.dumps(value, ensure_ascii=False, allow_nan=False)
    return "json", text.encode("utf-8", "replace")


def stored_values(outcome: RunOutcome) -> dict[str, Any]:
    """The run row's columns for an outcome, each storable on SQLite and PostgreSQL."""
    kind, result = storable_result(
        outcome.result_kind, outcome.result, truncated=outcome.result_truncated
    )
    return {
        "status": outcome.status.value,
        "result_kind": kind,
        "result": result,
        "result_truncated": outcome.result_truncated or len(outcome.result) > RESULT_LIMIT,
        "stdout": storable_text(outcome.stdout, limit=STREAM_LIMIT),
        "stderr": storable_text(outcome.stderr, limit=STREAM_LIMIT),
        "error_type": _optional_line(outcome.error_type, ERROR_TYPE_LIMIT),
        "error_message": _optional_text(outcome.error_message, ERROR_MESSAGE_LIMIT),
        "traceback_tail": _optional_text(outcome.traceback_tail, TRACEBACK_LIMIT),
        "killed_reason": _optional_line(outcome.killed_reason, KILLED_REASON_LIMIT),
        "duration_seconds": outcome.duration_seconds
        if math.isfinite(outcome.duration_seconds)
        else None,
        "cpu_seconds": outcome.cpu_seconds if math.isfinite(outcome.cpu_seconds) else None,
    }


def stored_files(outcome: RunOutcome) -> list[tuple[str, int, bytes]]:
    """Output files to store, in order, as long as all together stay within ``RESULT_LIMIT``."""
    kept: list[tuple[str, int, bytes]] = []
    room = RESULT_LIMIT
    for f in outcome.files:
        if len(f.content) > room:
            break
        room -= len(f.content)
        kept.append((storable_file_name(f.name), len(f.content), f.content))
    return kept


def _optional_text(text: str | None, limit: int) -> str | None:
    return None if text is None else storable_text(text, limit=limit)


def _optional_line(text: str | None, limit: int) -> str | None:
    return None if text is None else storable_line(text, limit=limit)
