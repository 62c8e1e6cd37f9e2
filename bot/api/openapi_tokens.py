"""The OpenAPI document's auth: the bearer scheme, each operation's scope, and ``/api/audit``.

OpenAPI 3.1 lets a non-OAuth security requirement list role names: each operation names the
scope a personal token needs (``{"bearerAuth": ["run"]}``); the operator's ``API_TOKEN`` has
every scope."""

from __future__ import annotations

import copy
from typing import Any

from bot.api.openapi import _error
from bot.services.principal import SCOPE_HELP, Scope

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
}

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

_AUDIT_ENTRY = {
    "type": "object",
    "required": ["id", "at", "team_id", "user", "token_name", "action", "status", "outcome"],
    "properties": {
        "id": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "team_id": {"type": "string"},
        "user": {"type": "string"},
        "token_id": {"type": ["string", "null"]},
        "token_name": {"type": "string"},
        "action": {"type": "string", "description": "Method and path of the request."},
        "target": {"type": ["string", "null"], "description": "The id the path named."},
        "status": {"type": "integer"},
        "outcome": {"type": "string", "description": "`ok`, or the error code answered."},
    },
}

_AUDIT_PATH = {
    "get": {
        "operationId": "getAudit",
        "summary": "Requests made with tokens, newest first (admins: their workspace).",
        "parameters": [
            {
                "name": "before",
                "in": "query",
                "required": False,
                "description": "Continue a page: `next_before` of the previous one.",
                "schema": {"type": "integer", "minimum": 1, "maximum": 2**62},
            },
            {
                "name": "limit",
                "in": "query",
                "required": False,
                "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
            },
        ],
        "responses": {
            "200": {
                "description": "One page of the audit.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/AuditPage"}}
                },
            },
            **{str(s): _error(s) for s in (401, 403, 404, 422, 500)},
        },
    }
}


def with_token_security(document: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(document)
    components = doc.setdefault("components", {})
    components["securitySchemes"] = {
        "bearerAuth": {"type": "http", "scheme": "bearer", "description": SCHEME_TEXT}
    }
    schemas = components.setdefault("schemas", {})
    schemas["AuditEntry"] = _AUDIT_ENTRY
    schemas["AuditPage"] = {
        "type": "object",
        "required": ["entries", "next_before"],
        "properties": {
            "entries": {"type": "array", "items": {"$ref": "#/components/schemas/AuditEntry"}},
            "next_before": {"type": ["integer", "null"]},
        },
    }
    doc["paths"]["/api/audit"] = copy.deepcopy(_AUDIT_PATH)
    doc["x-scopes"] = {s.value: SCOPE_HELP[s] for s in Scope}
    for item in doc["paths"].values():
        for operation in item.values():
            scope = SCOPE_OF.get(operation.get("operationId", ""))
            if scope is None:
                continue
            operation["security"] = [{"bearerAuth": [scope.value]}]
            operation["responses"].setdefault("403", _error(403))
            operation["description"] = (
                operation.get("description", "") + f" Needs the `{scope.value}` scope."
            ).strip()
    return doc
