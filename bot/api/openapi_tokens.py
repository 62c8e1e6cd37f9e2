"""The OpenAPI document's auth: the bearer scheme, described, and each operation's scope.

OpenAPI 3.1 lets a non-OAuth security requirement list role names: each operation names the
scope a personal token needs (``{"bearerAuth": ["run"]}``); the operator's ``API_TOKEN`` has
every scope. ``bot.api.auth.SCOPE_OF`` is the one table both this and the check read."""

from __future__ import annotations

from typing import Any

from bot.api.auth import SCOPE_OF
from bot.services.principal import SCOPE_HELP, Scope

SCHEME_TEXT = (
    "`Authorization: Bearer <token>`. A personal token (`tbp_...`, from `/task token` in Slack) "
    "acts as its Slack user: it sees and runs what that user could in Slack (their workspace's "
    "tasks in channels they belong to, and the tasks they created); tasks it may not see are "
    "answered 404 like ids that exist nowhere. Revoked and expired tokens are refused (401) on "
    "the next request. Scopes: "
    + "; ".join(f"`{s.value}`: {SCOPE_HELP[s]}" for s in Scope)
    + ". A token without the scope an operation names gets 403 naming it. The operator's "
    "`API_TOKEN` has every scope, in the local workspace. Every request made with a token is "
    "audited (`GET /api/audit`)."
)


def add_token_security(doc: dict[str, Any], *, forbidden: dict[str, Any]) -> None:
    """In place: the scheme's description, the scopes, each operation's scope and its 403."""
    schemes = doc.setdefault("components", {}).setdefault("securitySchemes", {})
    schemes["bearerAuth"] = {"type": "http", "scheme": "bearer", "description": SCHEME_TEXT}
    doc["x-scopes"] = {s.value: SCOPE_HELP[s] for s in Scope}
    for item in doc.get("paths", {}).values():
        for operation in item.values():
            scope = SCOPE_OF.get(operation.get("operationId", ""))
            if scope is None:
                continue
            operation["security"] = [{"bearerAuth": [scope.value]}]
            operation["responses"].setdefault("403", forbidden)
            needs = f"Needs the `{scope.value}` scope."
            operation["description"] = f"{operation.get('description', '')} {needs}".strip()
