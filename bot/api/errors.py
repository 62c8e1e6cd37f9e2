"""The API's one error shape, ``{"error": {"code", "message"}}``, and what turns into it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from starlette.responses import JSONResponse

from bot.services.errors import ServiceError
from bot.web import json_body

COMMON_HEADERS = {"cache-control": "no-store", "x-content-type-options": "nosniff"}

SERVICE_STATUS: dict[str, int] = {
    "not_found": 404,
    "ambiguous_id": 409,
    "invalid_input": 422,
    "not_ready": 409,
    "not_allowed": 403,
    "model_unavailable": 503,
    "generation_failed": 422,
    "already_exists": 409,
    "budget_exceeded": 429,
}


class ApiError(Exception):
    """An answer in the one error shape."""

    def __init__(
        self, status: int, code: str, message: str, *, headers: Mapping[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def invalid(message: str) -> ApiError:
    return ApiError(422, "invalid_input", message)


def too_large(limit: int) -> ApiError:
    return ApiError(413, "too_large", f"The request body is over the limit of {limit} bytes.")


def unsupported(media_type: str, accepted: str) -> ApiError:
    shown = media_type or "none"
    return ApiError(415, "unsupported_media_type", f"Content-Type {shown} is not {accepted}.")


class JsonResponse(JSONResponse):
    """JSON as the API sends it: UTF-8 (a lone surrogate a run produced is replaced, never a
    500), never cached, never sniffed."""

    media_type = "application/json"

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        super().__init__(content, status_code, **kwargs)
        for name, value in COMMON_HEADERS.items():
            self.headers.setdefault(name, value)

    def render(self, content: Any) -> bytes:
        return json_body(content)


def error_response(error: ApiError) -> JsonResponse:
    body = {"error": {"code": error.code, "message": error.message}}
    return JsonResponse(body, error.status, headers=error.headers)


def service_error(exc: ServiceError) -> ApiError:
    return ApiError(SERVICE_STATUS.get(exc.code, 422), exc.code, str(exc))


_WHERE = {"query": "Query parameter", "path": "Path parameter", "body": "Field", "form": "Field"}


def _name(loc: Sequence[Any]) -> tuple[str, str]:
    """(where, dotted name) of a pydantic error location, e.g. ("Field", "task_type")."""
    where = _WHERE.get(str(loc[0]), "Field") if loc else "Field"
    rest = [str(p) for p in (loc[1:] if loc and str(loc[0]) in _WHERE else loc)]
    return where, ".".join(rest)


def validation_message(errors: Iterable[Mapping[str, Any]], *, allowed: Iterable[str] = ()) -> str:
    """The first problem of a validation as one sentence naming the field."""
    for error in errors:
        where, name = _name(error.get("loc", ()))
        kind = str(error.get("type", ""))
        if kind == "extra_forbidden":
            shown = ", ".join(f"`{n}`" for n in allowed) or "none"
            return f"Unknown field `{name[:40]}`; allowed: {shown}."
        if kind == "string_unicode":
            return f"{where} `{name}` is not valid Unicode text."
        if kind == "missing":
            return f"{where} `{name}` is required."
        if kind == "value_error":
            reason = str(error.get("ctx", {}).get("error", error.get("msg", "")))
            return f"{where} `{name}` {reason}."
        return f"{where} `{name}`: {error.get('msg', 'is not valid')}."
    return "The request is not valid."
