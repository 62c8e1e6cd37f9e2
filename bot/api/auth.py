"""Who is calling: one dependency turns the bearer token into a ``Principal``, or answers 401.

The token is the operator's ``API_TOKEN`` (every scope, the local workspace) or a personal one
from ``/task token`` (its Slack user, in their workspace, with its scopes):
``TokenService.authenticate`` tells which, checking revocation and expiry on every request.
The same dependency refuses (403, naming it) a token without the scope its operation needs
(``SCOPE_OF``, by operation id; the OpenAPI document says the same), and leaves the principal
on the request for the audit (``bot.api.audit``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.api.errors import ApiError
from bot.services.errors import Unauthorized
from bot.services.principal import Principal, Scope
from bot.services.tokens import TokenRefused

if TYPE_CHECKING:
    from bot.services.container import Services

SCOPE_OF: dict[str, Scope] = {
    "createTask": Scope.WRITE,
    "refineTask": Scope.WRITE,
    "deleteTask": Scope.WRITE,
    "runTask": Scope.RUN,
    "getTask": Scope.READ,
    "listVersions": Scope.READ,
    "listTasks": Scope.READ,
    "getRun": Scope.READ,
    "getUsage": Scope.READ,
    "getAudit": Scope.READ,
    "pinVersion": Scope.WRITE,
    "unpinVersion": Scope.WRITE,
    "stopRun": Scope.RUN,
}
"""The scope each operation needs (every operation but the OpenAPI document is here)."""

PRINCIPAL_KEY = "taskbot_principal"  # in the ASGI scope's "state", read by the audit
REFUSED_KEY = "taskbot_refused"  # a revoked or expired token's owner and why

bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth")


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="taskbot"' + (f', error="{error}"' if error else "")
    return {"www-authenticate": value}


def authenticate(credentials: HTTPAuthorizationCredentials | None, services: Services) -> Principal:
    """The principal of the bearer token, or 401 (a revoked or expired token says which)."""
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Send `Authorization: Bearer <token>` (a personal token from `/task token`, or "
            "API_TOKEN).",
            headers=_challenge(),
        )
    try:
        return services.tokens.authenticate(credentials.credentials.strip())
    except TokenRefused:
        raise
    except Unauthorized as exc:
        raise ApiError(401, "unauthorized", str(exc), headers=_challenge("invalid_token")) from None


def require_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The dependency every endpoint but the OpenAPI document has: 401 without a valid token,
    403 without the operation's scope."""
    services: Services = request.app.state.services
    try:
        principal = authenticate(credentials, services)
    except TokenRefused as exc:
        request.state.taskbot_refused = (exc.principal, exc.reason)
        raise ApiError(401, "unauthorized", str(exc), headers=_challenge("invalid_token")) from None
    request.state.taskbot_principal = principal
    route = request.scope.get("route")
    scope = SCOPE_OF.get(route.operation_id or "") if isinstance(route, APIRoute) else None
    if scope is not None:
        principal.require(scope)
    services.personal.check_person(principal)
    return principal


Caller = Annotated[Principal, Depends(require_principal)]
