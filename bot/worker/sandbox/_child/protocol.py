"""Wire formats shared by the supervisor, the zygote and the run child.

Supervisor <-> zygote: one JSON object per SOCK_SEQPACKET message; a "run" message carries the
three write ends (stdout, stderr, result) as SCM_RIGHTS. The zygote only ever sees paths and
numbers, never user data.

Run child -> supervisor (result pipe): one JSON header line, then the payload bytes.
"""

from __future__ import annotations

import json
from typing import Any

RESULT_FD = 3
EXIT_SETUP_FAILED = 121
HEADER_LIMIT = 64 * 1024
ERROR_TEXT_LIMIT = 4000
TRACEBACK_LIMIT = 8000

OP_RUN = "run"
OP_KILL = "kill"
OP_EXIT = "exit"
OP_READY = "ready"
OP_DONE = "done"


def encode_message(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


def decode_message(data: bytes) -> dict[str, Any]:
    value = json.loads(data)
    if not isinstance(value, dict):
        raise ValueError("protocol message is not an object")
    return value


def encode_header(header: dict[str, Any]) -> bytes:
    return json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode() + b"\n"


def decode_result(data: bytes) -> tuple[dict[str, Any] | None, bytes]:
    """Split what the child wrote into (header, payload); header is None when malformed."""
    newline = data.find(b"\n", 0, HEADER_LIMIT)
    if newline < 0:
        return None, b""
    try:
        header = json.loads(data[:newline])
    except ValueError:
        return None, b""
    if not isinstance(header, dict) or header.get("v") != 1:
        return None, b""
    return header, data[newline + 1 :]


def clip(text: str, limit: int, *, tail: bool = False) -> str:
    if len(text) <= limit:
        return text
    return "..." + text[-limit:] if tail else text[:limit] + "..."
