"""Who an API request acts as, and its audit entry: the seam where personal tokens enter the
API (``Authorization: Bearer <API_TOKEN | personal token>``)."""

from __future__ import annotations

import logging

from bot.api.http import ApiError, Request
from bot.services.container import Services
from bot.services.errors import Unauthorized
from bot.services.principal import Principal
from bot.services.tokens import TokenRefused

logger = logging.getLogger(__name__)

CHALLENGE = (("www-authenticate", 'Bearer realm="taskbot"'),)
INVALID = (("www-authenticate", 'Bearer realm="taskbot", error="invalid_token"'),)


def api_is_on(services: Services) -> bool:
    """With ``API_TOKEN`` (the operator's door) or Slack (where personal tokens are issued)."""
    s = services.settings
    return bool(s.api_token or s.slack_bot_token or (s.slack_client_id and s.slack_client_secret))


def authenticate(services: Services, request: Request) -> Principal:
    """The principal of ``Authorization: Bearer ...``, or 401. A revoked or expired token's
    refusal is audited under its owner before it is answered."""
    scheme, _, credentials = request.header("Authorization").strip().partition(" ")
    if scheme.lower() != "bearer" or not credentials.strip():
        raise ApiError(
            401,
            "unauthorized",
            "Send `Authorization: Bearer <token>` (a personal token from `/task token`).",
            headers=CHALLENGE,
        )
    try:
        return services.tokens.authenticate(credentials.strip())
    except TokenRefused as exc:
        audit(services, exc.principal, request, status=401, outcome=exc.reason)
        raise ApiError(401, "unauthorized", str(exc), headers=INVALID) from None
    except Unauthorized as exc:
        raise ApiError(401, "unauthorized", str(exc), headers=INVALID) from None


def audit(
    services: Services,
    principal: Principal,
    request: Request,
    *,
    status: int,
    outcome: str,
    target: str | None = None,
) -> None:
    """Record one request made with a token; a failure to record is logged, never answered."""
    try:
        services.audit.record(
            principal,
            action=f"{request.method} {request.path[:200]}",
            target=target,
            status=status,
            outcome=outcome,
        )
    except Exception:
        logger.exception("could not audit %s %s", request.method, request.path[:200])
