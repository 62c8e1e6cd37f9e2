"""The seed's HTTP API as a plain WSGI application over the services.

``WebApp`` hands it every path under ``/api`` unchanged. Order of decisions for a request:
API off (no ``API_TOKEN``) -> 404 for everything; ``GET /api/openapi.json`` is public; every
other path needs ``Authorization: Bearer <API_TOKEN>`` (401), then routing (404, 405), then the
handler. Every error, including unexpected ones, leaves in the one error shape.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.api.handlers import Handlers, Reply
from bot.api.http import ApiError, Request, status_line
from bot.api.openapi import OPENAPI_PATH, build_openapi
from bot.services.errors import ServiceError
from bot.web import json_body
from storage.errors import StorageUnavailable

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from bot.services.container import Services

logger = logging.getLogger(__name__)


def json_response(
    start_response: StartResponse, status: str, body: Any, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    data = json_body(body)
    start_response(
        status,
        [("content-type", "application/json"), ("content-length", str(len(data))), *headers],
    )
    return [data]


Handler = Callable[[Request, Mapping[str, str]], Reply]

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

_COMMON_HEADERS = (("cache-control", "no-store"), ("x-content-type-options", "nosniff"))


@dataclass(frozen=True)
class Route:
    pattern: re.Pattern[str]
    methods: Mapping[str, Handler]
    query: tuple[str, ...]


def _route(path: str, *, query: tuple[str, ...] = (), **methods: Handler) -> Route:
    regex = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(re.compile(f"^{regex}$"), methods, query)


class ApiApp:
    def __init__(self, services: Services) -> None:
        self.services = services
        handlers = Handlers(services)
        self._openapi = build_openapi(
            max_input_bytes=services.runs.max_input_bytes,
        )
        # Literal paths come first so ``/api/task/create`` never reads as a task id.
        self.routes: tuple[Route, ...] = (
            _route("/api/task/create", POST=handlers.create),
            _route("/api/tasks", GET=handlers.list, query=("limit",)),
            _route("/api/task/{id}", GET=handlers.show, DELETE=handlers.delete, query=("version",)),
            _route("/api/task/{id}/refine", POST=handlers.refine),
            _route("/api/task/{id}/run", POST=handlers.run, query=("version",)),
            _route("/api/task/{id}/versions", GET=handlers.versions),
            _route("/api/run/{id}", GET=handlers.get_run),
            _route("/api/run/{id}/stop", POST=handlers.stop_run),
            _route("/api/usage", GET=handlers.usage, query=("days",)),
        )

    @property
    def token(self) -> str:
        return self.services.settings.api_token

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request.of(environ)
        try:
            status, body = self._dispatch(request)
            return self._reply(start_response, status, body)
        except ApiError as exc:
            return self._error(start_response, exc.status, exc.code, exc.message, exc.headers)
        except ServiceError as exc:
            status = SERVICE_STATUS.get(exc.code, 422)
            return self._error(start_response, status, exc.code, str(exc))
        except StorageUnavailable as exc:
            logger.warning("API %s %s: database unreachable", request.method, request.path)
            return self._error(start_response, 503, "database_unavailable", str(exc))
        except Exception:
            logger.exception("API %s %s failed", request.method, request.path)
            return self._error(
                start_response, 500, "internal_error", "Something went wrong on our side."
            )

    def _dispatch(self, request: Request) -> Reply:
        if not self.token:
            raise ApiError(404, "not_found", "The API is off (no API_TOKEN is configured).")
        if request.path == OPENAPI_PATH:
            if request.method != "GET":
                raise _method_not_allowed(("GET",))
            return 200, self._openapi
        self._authenticate(request)
        for route in self.routes:
            match = route.pattern.match(request.path)
            if match is None:
                continue
            handler = route.methods.get(request.method)
            if handler is None:
                raise _method_not_allowed(tuple(route.methods))
            request.check_query(route.query)
            return handler(request, match.groupdict())
        raise ApiError(404, "not_found", f"No route {request.path[:200]}.")

    def _authenticate(self, request: Request) -> None:
        scheme, _, credentials = request.header("Authorization").strip().partition(" ")
        challenge = (("www-authenticate", 'Bearer realm="taskbot"'),)
        if scheme.lower() != "bearer" or not credentials.strip():
            raise ApiError(
                401,
                "unauthorized",
                "Send `Authorization: Bearer <API_TOKEN>`.",
                headers=challenge,
            )
        given = credentials.strip().encode("latin-1", "replace")
        if not hmac.compare_digest(given, self.token.encode("utf-8")):
            raise ApiError(
                401,
                "unauthorized",
                "The bearer token is not valid.",
                headers=(("www-authenticate", 'Bearer realm="taskbot", error="invalid_token"'),),
            )

    @staticmethod
    def _reply(start_response: StartResponse, status: int, body: Any) -> list[bytes]:
        return json_response(start_response, status_line(status), body, _COMMON_HEADERS)

    @staticmethod
    def _error(
        start_response: StartResponse,
        status: int,
        code: str,
        message: str,
        headers: Iterable[tuple[str, str]] = (),
    ) -> list[bytes]:
        body = {"error": {"code": code, "message": message}}
        return json_response(
            start_response, status_line(status), body, (*_COMMON_HEADERS, *headers)
        )


def _method_not_allowed(allowed: Iterable[str]) -> ApiError:
    methods = ", ".join(allowed)
    return ApiError(
        405,
        "method_not_allowed",
        f"This endpoint accepts {methods}.",
        headers=(("allow", methods),),
    )


def make_api_app(services: Services) -> WSGIApplication:
    """The API as a WSGI application; mount it with ``WebApp(api=...)``."""
    return ApiApp(services)
