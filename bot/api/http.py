"""Request plumbing for the API: errors, bounded body reading, JSON and multipart parsing.

Nothing here knows about tasks or runs; handlers combine these pieces with one service call.
"""

from __future__ import annotations

import email.policy
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from wsgiref.types import WSGIEnvironment

    from bot.services.principal import Principal

JSON_BODY_LIMIT = 64 * 1024
"""Largest JSON body accepted by endpoints that carry no input file."""

MULTIPART_OVERHEAD = 64 * 1024
"""Room for boundaries, part headers and small form fields on top of the input-file limit."""

MAX_VERSION = 2**31 - 1
_READ_CHUNK = 64 * 1024


class ApiError(Exception):
    """An answer in the one error shape: ``{"error": {"code", "message"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: Iterable[tuple[str, str]] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = tuple(headers)


def status_line(status: int) -> str:
    return f"{status} {HTTPStatus(status).phrase}"


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_input", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"The request body is over the limit of {limit} bytes.")


@dataclass
class Request:
    environ: WSGIEnvironment
    method: str
    path: str
    query: dict[str, list[str]] = field(default_factory=dict)
    principal: Principal | None = None  # whom the bearer token acts as, once authenticated
    target: str | None = None  # the id the route named, for the audit

    @classmethod
    def of(cls, environ: WSGIEnvironment) -> Request:
        query = parse_qs(str(environ.get("QUERY_STRING", "")), keep_blank_values=True)
        return cls(
            environ=environ,
            method=str(environ.get("REQUEST_METHOD", "GET")).upper(),
            path=str(environ.get("PATH_INFO", "")),
            query=query,
        )

    def header(self, name: str) -> str:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            return str(self.environ.get(key, "") or "")
        return str(self.environ.get(f"HTTP_{key}", "") or "")

    def media_type(self) -> str:
        return self.header("Content-Type").split(";", 1)[0].strip().lower()

    def content_length(self) -> int | None:
        raw = self.header("Content-Length").strip()
        if not raw:
            return None
        if not raw.isdigit():
            raise bad_request("The Content-Length header is not a number.")
        return int(raw)

    def read_body(self, limit: int) -> bytes:
        """The whole body, refusing (413) anything over ``limit`` before reading it when the
        length is declared, and after ``limit + 1`` bytes when it is not (chunked)."""
        stream = self.environ.get("wsgi.input")
        length = self.content_length()
        if length is not None:
            if length > limit:
                raise too_large(limit)
            if length == 0 or stream is None:
                return b""
            data = _read_exactly(stream, length)
            if len(data) < length:
                raise bad_request("The request body ended before its Content-Length.")
            return data
        if stream is None:
            return b""
        data = _read_exactly(stream, limit + 1)
        if len(data) > limit:
            raise too_large(limit)
        return data

    def check_query(self, allowed: Iterable[str]) -> None:
        unknown = sorted(set(self.query) - set(allowed))
        if unknown:
            names = ", ".join(f"`{n[:40]}`" for n in unknown[:5])
            raise invalid(f"Unknown query parameter(s) {names}.")

    def query_int(self, name: str, *, minimum: int, maximum: int) -> int | None:
        values = self.query.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise invalid(f"Query parameter `{name}` is given more than once.")
        raw = values[0].strip()
        if not raw.isascii() or not raw.isdigit():
            raise invalid(f"Query parameter `{name}` must be a whole number.")
        value = int(raw)
        if not minimum <= value <= maximum:
            raise invalid(f"Query parameter `{name}` must be between {minimum} and {maximum}.")
        return value


def _read_exactly(stream: Any, size: int) -> bytes:
    chunks: list[bytes] = []
    remaining = size
    while remaining > 0:
        chunk = stream.read(min(remaining, _READ_CHUNK))
        if not chunk:
            break
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


# --- JSON --------------------------------------------------------------------------------------


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


@dataclass(frozen=True)
class Field:
    kind: type
    required: bool = False
    max_length: int | None = None
    minimum: int | None = None
    maximum: int | None = None
    choices: tuple[str, ...] = ()
    allow_nul: bool = False  # file content may hold NUL; text stored in the database may not


def validate(body: Mapping[str, Any], fields: Mapping[str, Field]) -> dict[str, Any]:
    """Check required fields, types, lengths and choices; refuse unknown fields (422)."""
    unknown = sorted(set(body) - set(fields))
    if unknown:
        names = ", ".join(f"`{n}`" for n in unknown)
        allowed = ", ".join(f"`{n}`" for n in fields) or "none"
        raise invalid(f"Unknown field(s) {names}; allowed: {allowed}.")
    out: dict[str, Any] = {}
    for name, spec in fields.items():
        if name not in body or body[name] is None:
            if spec.required:
                raise invalid(f"Field `{name}` is required.")
            continue
        value = body[name]
        if spec.kind is int:
            out[name] = _check_int(name, value, spec)
        else:
            out[name] = _check_str(name, value, spec)
    return out


def _check_int(name: str, value: Any, spec: Field) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # JSON Schema counts 2.0 as an integer
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(f"Field `{name}` must be an integer.")
    if spec.minimum is not None and value < spec.minimum:
        raise invalid(f"Field `{name}` must be at least {spec.minimum}.")
    if spec.maximum is not None and value > spec.maximum:
        raise invalid(f"Field `{name}` must be at most {spec.maximum}.")
    return value


def _check_str(name: str, value: Any, spec: Field) -> str:
    if not isinstance(value, str):
        raise invalid(f"Field `{name}` must be a string.")
    check_text(name, value, allow_nul=spec.allow_nul)
    if spec.max_length is not None and len(value) > spec.max_length:
        raise invalid(f"Field `{name}` is over {spec.max_length} characters.")
    if spec.choices and value not in spec.choices:
        raise invalid(f"Field `{name}` must be one of: {', '.join(spec.choices)}.")
    return value


def check_text(name: str, value: str, *, allow_nul: bool = False) -> None:
    """Text the database can store: valid UTF-8, no NUL characters (unless allowed)."""
    if not allow_nul and "\x00" in value:
        raise invalid(f"Field `{name}` must not contain NUL characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise invalid(f"Field `{name}` is not valid Unicode text.") from None


# --- multipart/form-data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    data: bytes


def parse_multipart(content_type: str, body: bytes) -> list[Part]:
    """Parse a ``multipart/form-data`` body with the stdlib ``email`` parser."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    try:
        message = BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    except Exception as exc:
        raise bad_request(f"The multipart body could not be parsed: {exc}") from None
    if not isinstance(message, EmailMessage) or not message.is_multipart():
        raise bad_request("The multipart body could not be parsed (is the boundary right?).")
    if message.defects:
        raise bad_request("The multipart body is malformed (missing or broken boundary).")
    parts: list[Part] = []
    for sub in message.iter_parts():
        if not isinstance(sub, EmailMessage):
            raise bad_request("The multipart body holds a part that is not a form field.")
        disposition = sub.get_content_disposition()
        name = sub.get_param("name", header="content-disposition")
        if disposition != "form-data" or not isinstance(name, str) or not name:
            raise bad_request("Every multipart part needs `Content-Disposition: form-data; name=`.")
        filename = sub.get_filename()
        payload = sub.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append(Part(name=name, filename=filename, data=data))
    return parts


def is_json(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )
