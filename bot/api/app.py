"""The seed's HTTP API under ``/api``: a FastAPI application over the service layer.

Order of decisions for a request: API off (no ``API_TOKEN``, no Slack) -> 404 for everything;
``GET /api/openapi.json`` is public; routing (404, 405); then every other endpoint's bearer
token (401, ``bot.api.auth``), its query, body and the handler. Every error, unexpected ones
included, leaves in the one error shape (``bot.api.errors``).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.routing import Match

from bot.api import audit, pin_routes, routes, stop_routes
from bot.api.bodies import JSON_BODY_LIMIT
from bot.api.errors import ApiError, JsonResponse, error_response
from bot.api.guard import ErrorShapeRoute
from bot.api.models import CreateTask, RefineTask, RunJson, RunUpload
from bot.api.openapi_tokens import add_token_security

if TYPE_CHECKING:
    from bot.services.container import Services
    from bot.web import Scope

OPENAPI_PATH = "/api/openapi.json"
DESCRIPTION = (
    "Turn plain-language requests into small Python programs, run them on your files, read "
    'every version. Errors always have the shape `{"error": {"code": "...", "message": "..."}}`.'
)
REQUEST_MODELS = (CreateTask, RefineTask, RunJson, RunUpload, pin_routes.PinTask)


def _allowed_methods(app: FastAPI, scope: Scope) -> str:
    methods: list[str] = []
    for route in (
        *routes.router.routes,
        *pin_routes.router.routes,
        *app.router.routes,
    ):  # included routers wrap theirs
        if isinstance(route, APIRoute) and route.matches(scope)[0] is not Match.NONE:
            methods += [m for m in sorted(route.methods or ()) if m not in methods]
    return ", ".join(methods)


async def _routing_error(request: Request, exc: Exception) -> Response:
    """404 and 405 from routing, in the one error shape."""
    assert isinstance(exc, HTTPException)
    if exc.status_code == 405:
        methods = _allowed_methods(request.app, request.scope)
        return error_response(
            ApiError(
                405,
                "method_not_allowed",
                f"This endpoint accepts {methods}.",
                headers={"allow": methods},
            )
        )
    if exc.status_code == 404:
        return error_response(ApiError(404, "not_found", f"No route {request.url.path[:200]}."))
    return error_response(ApiError(exc.status_code, "bad_request", str(exc.detail)))


def _no_null_query(operation: dict[str, Any]) -> None:
    """An optional query parameter is absent or a value, never ``null`` (there is no way to
    send one): ``anyOf [X, null]`` is documented as X."""
    for parameter in operation.get("parameters", ()):
        schema = parameter.get("schema", {})
        options = schema.get("anyOf")
        if options and {"type": "null"} in options and len(options) == 2:
            [kept] = [o for o in options if o != {"type": "null"}]
            parameter["schema"] = {**{k: v for k, v in schema.items() if k != "anyOf"}, **kept}


class TaskbotApi(FastAPI):
    """The API app; the OpenAPI document is FastAPI's, generated from the models, plus the
    request bodies the endpoints read themselves (so the limits apply before parsing)."""

    def __init__(self, services: Services | None, *, max_input_bytes: int) -> None:
        super().__init__(
            title="Taskbot API",
            version="1",
            description=DESCRIPTION,
            openapi_url=None,
            docs_url=None,
            redoc_url=None,
            redirect_slashes=False,
            default_response_class=JsonResponse,
            exception_handlers={HTTPException: _routing_error},
        )
        self.state.services = services
        self.max_input_bytes = max_input_bytes
        self.include_router(routes.router)
        self.include_router(pin_routes.router)
        self.include_router(stop_routes.router)
        self.include_router(audit.router(routes.errors, routes.known_query))
        self.router.add_api_route(
            OPENAPI_PATH,
            self.openapi_document,
            methods=["GET"],
            operation_id="openapi",
            summary="This document (no token needed while the API is on).",
            response_model=dict[str, Any],
            responses=routes.errors(),
            route_class_override=ErrorShapeRoute,
        )
        self._document: dict[str, Any] | None = None

    def openapi_document(self) -> dict[str, Any]:
        return self.openapi()

    def openapi(self) -> dict[str, Any]:
        if self._document is None:
            self._document = self._build_document()
        return self._document

    def _build_document(self) -> dict[str, Any]:
        doc = get_openapi(
            title=self.title,
            version=self.version,
            openapi_version="3.1.0",
            description=self.description,
            routes=self.routes,
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        for model in REQUEST_MODELS:
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[model.__name__] = schema
        limit = self.max_input_bytes
        schemas["RunJson"]["properties"]["input_text"]["maxLength"] = limit
        schemas["RunUpload"]["properties"]["file"]["description"] = (
            f"The input file, at most {limit} bytes."
        )
        doc["paths"]["/api/task/{id}/run"]["post"]["requestBody"] = {
            "required": False,
            "description": "A multipart upload with a `file` part, or JSON. Size limits: the "
            f"input file or text at most {limit} bytes; other JSON bodies {JSON_BODY_LIMIT} "
            "bytes. `version` may be given in the query or the body; both with different values "
            "is 422.",
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/RunJson"}},
                "multipart/form-data": {
                    "schema": {"$ref": "#/components/schemas/RunUpload"},
                    "encoding": {"file": {"contentType": "application/octet-stream"}},
                },
            },
        }
        for methods in doc["paths"].values():
            for operation in methods.values():
                _no_null_query(operation)
        forbidden = {
            "description": routes.ERROR_TEXT[403],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
        }
        add_token_security(doc, forbidden=forbidden)
        if "#/components/schemas/HTTPValidationError" not in json.dumps(doc["paths"]):
            schemas.pop("HTTPValidationError", None)  # FastAPI's own 422 shape: not ours
            schemas.pop("ValidationError", None)
        return doc


def api_document(*, max_input_bytes: int) -> dict[str, Any]:
    """The OpenAPI document, without services (for tests and tools)."""
    return TaskbotApi(None, max_input_bytes=max_input_bytes).openapi()
