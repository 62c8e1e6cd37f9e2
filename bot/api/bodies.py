"""Request bodies, read within their limits before anything parses them.

A declared ``Content-Length`` over the limit is refused (413) before a byte is read; a body
without one (chunked) is refused as soon as it passes the limit. JSON must be one object;
multipart is parsed by Starlette (python-multipart) from the bytes already read.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from bot.api.errors import ApiError, bad_request, invalid, too_large, unsupported
from bot.api.models import MAX_VERSION

JSON_BODY_LIMIT = 64 * 1024
"""Largest JSON body accepted by endpoints that carry no input file."""

MULTIPART_OVERHEAD = 64 * 1024
"""Room for boundaries, part headers and small form fields on top of the input-file limit."""

INPUT_TEXT_NAME = "input.txt"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def is_json(media: str) -> bool:
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length", "").strip()
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit():
        raise bad_request("The Content-Length header is not a number.")
    return int(raw)


async def read_body(request: Request, limit: int) -> bytes:
    length = declared_length(request)
    if length is not None and length > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json_object(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise bad_request("The request body is empty: send a JSON object.")
    try:
        value = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise bad_request("The request body must be a JSON object.")
    return value


async def json_object(request: Request, *, limit: int = JSON_BODY_LIMIT) -> dict[str, Any]:
    media = media_type(request)
    if not is_json(media):
        raise unsupported(media, "application/json")
    return parse_json_object(await read_body(request, limit))


@dataclass(frozen=True)
class RunInput:
    data: bytes | None
    name: str | None
    version: int | None


def input_too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"The input is {size} bytes; the limit is {limit} bytes (SANDBOX_MAX_INPUT_MB).",
    )


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]


def _replay(body: bytes) -> Receive:
    async def receive() -> MutableMapping[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return receive


async def multipart_input(request: Request, limit: int) -> RunInput:
    """One ``file`` part (the input) and an optional ``version`` part."""
    body = await read_body(request, limit + MULTIPART_OVERHEAD)
    try:
        form = await Request(request.scope, _replay(body)).form(max_files=4, max_fields=4)
    except HTTPException as exc:
        raise bad_request(f"The multipart body could not be parsed: {exc.detail}") from None
    if not form:
        raise bad_request("The multipart body holds no parts (is the boundary right?).")
    files: list[bytes | UploadFile | str] = []
    version: int | None = None
    for name, value in form.multi_items():
        if name == "file":
            files.append(value)
        elif name == "version":
            raw = value.strip() if isinstance(value, str) else ""
            if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= MAX_VERSION:
                raise invalid(f"Form field `version` must be a whole number 1..{MAX_VERSION}.")
            version = int(raw)
        else:
            raise invalid(f"Unknown form field `{name[:40]}`; allowed: `file`, `version`.")
    if len(files) != 1:
        raise invalid("Send exactly one form field `file` holding the input file.")
    upload = files[0]
    if isinstance(upload, UploadFile):
        data, filename = await upload.read(), upload.filename
        await upload.close()
    else:
        data, filename = str(upload).encode("utf-8", "surrogateescape"), None
    if len(data) > limit:
        raise input_too_large(len(data), limit)
    return RunInput(data, filename or "input", version)
