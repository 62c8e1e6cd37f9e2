"""The audit on the API: ``GET /api/audit`` pages through it, and every request made with a
token (who, which token, what, when, the status and outcome) is recorded as it is answered."""

from __future__ import annotations

import asyncio
import json
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from bot.api.auth import PRINCIPAL_KEY, REFUSED_KEY, Caller, require_principal
from bot.api.guard import ErrorShapeRoute
from bot.api.models import Answer
from bot.services.audit import AuditPage, AuditView
from bot.services.principal import Principal

if TYPE_CHECKING:
    from bot.services.container import Services
    from bot.web import Receive, Scope, Send

logger = logging.getLogger(__name__)

MAX_PAGE = 100
_ERROR_PEEK = 4096  # an error body is small; its code is the entry's outcome


class AuditEntryOut(Answer):
    id: int
    at: datetime
    team_id: str
    user: str
    token_id: str | None
    token_name: str
    action: str  # method and path of the request
    target: str | None  # the id the path named
    status: int
    outcome: str  # "ok", or the error code answered

    @classmethod
    def of(cls, e: AuditView) -> AuditEntryOut:
        return cls(
            id=e.id,
            at=e.at,
            team_id=e.team_id,
            user=e.user_id,
            token_id=e.token_id,
            token_name=e.token_name,
            action=e.action,
            target=e.target,
            status=e.status,
            outcome=e.outcome,
        )


class AuditPageOut(Answer):
    entries: list[AuditEntryOut]
    next_before: int | None  # pass as `before` for the next, older page

    @classmethod
    def of(cls, page: AuditPage) -> AuditPageOut:
        return cls(
            entries=[AuditEntryOut.of(e) for e in page.entries], next_before=page.next_before
        )


def _services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def router(errors: Any, known_query: Any) -> APIRouter:
    """The audit's route, with the API's error responses and query check."""
    audit = APIRouter(
        route_class=ErrorShapeRoute,
        dependencies=[Depends(require_principal), Depends(known_query)],
    )

    @audit.get(
        "/api/audit",
        operation_id="getAudit",
        summary="Requests made with tokens, newest first (admins: their workspace).",
        responses=errors(403),
    )
    def get_audit(
        caller: Caller,
        request: Request,
        before: Annotated[
            int | None,
            Query(ge=1, le=2**62, description="Continue a page: `next_before` of the last one."),
        ] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 20,
    ) -> AuditPageOut:
        page = _services(request).audit.page(caller, before=before, limit=limit)
        return AuditPageOut.of(page)

    return audit


class AuditRecorder:
    """ASGI middleware: a request made with a token has its entry written as it is answered,
    before the answer's last byte (on a thread: the database is blocking), so whoever got the
    answer finds it in the audit. A failure to write is logged, never answered."""

    def __init__(self, app: Any, services: Services) -> None:
        self._app = app
        self._services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self._app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        seen: dict[str, Any] = {"status": 500, "body": b"", "recorded": False}

        async def record() -> None:
            who, outcome = _who(state, seen)
            seen["recorded"] = True
            if who is None:
                return
            action = f"{scope.get('method', '')} {str(scope.get('path', ''))[:200]}"
            target = (scope.get("path_params") or {}).get("id")
            await asyncio.to_thread(
                self._record, who, action, int(seen["status"]), outcome or "ok", target
            )

        async def watch(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                seen["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                if seen["status"] >= 400:
                    seen["body"] = (seen["body"] + message.get("body", b""))[:_ERROR_PEEK]
                if not message.get("more_body") and not seen["recorded"]:
                    await record()  # before the answer's last byte: the caller sees it audited
            await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            if not seen["recorded"]:
                await record()

    def _record(
        self, who: Principal, action: str, status: int, outcome: str, target: str | None
    ) -> None:
        try:
            self._services.audit.record(
                who, action=action, status=status, outcome=outcome, target=target
            )
        except Exception:
            logger.exception("could not audit %s", action)


def _who(state: dict[str, Any], seen: dict[str, Any]) -> tuple[Principal | None, str | None]:
    refused = state.get(REFUSED_KEY)
    if refused is not None:
        principal, reason = refused
        return principal, str(reason)
    principal = state.get(PRINCIPAL_KEY)
    if principal is None:
        return None, None
    if seen["status"] < 400:
        return principal, "ok"
    try:
        return principal, str(json.loads(seen["body"])["error"]["code"])[:64]
    except (ValueError, KeyError, TypeError):
        return principal, f"http_{seen['status']}"
