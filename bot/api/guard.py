"""The route class of every endpoint: whatever goes wrong is answered in the one error shape."""

from __future__ import annotations

import logging
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException
from starlette.responses import Response

from bot.api.errors import ApiError, error_response, invalid, service_error, validation_message
from bot.services.errors import ServiceError
from storage.errors import StorageUnavailable

logger = logging.getLogger(__name__)


class ErrorShapeRoute(APIRoute):
    """A route whose every failure, expected or not, is answered in the one error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def guarded(request: Request) -> Response:
            try:
                return await handler(request)
            except ApiError as exc:
                return error_response(exc)
            except ServiceError as exc:
                return error_response(service_error(exc))
            except RequestValidationError as exc:
                return error_response(invalid(validation_message(exc.errors())))
            except HTTPException as exc:
                return error_response(ApiError(exc.status_code, "bad_request", str(exc.detail)))
            except StorageUnavailable as exc:
                logger.warning("API %s %s: database unreachable", request.method, request.url.path)
                return error_response(ApiError(503, "database_unavailable", str(exc)))
            except Exception:
                logger.exception("API %s %s failed", request.method, request.url.path)
                return error_response(
                    ApiError(500, "internal_error", "Something went wrong on our side.")
                )

        return guarded
