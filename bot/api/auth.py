"""Who is calling: one dependency turns the bearer token into a ``Principal``, or answers 401.

Today there is one token, ``API_TOKEN``, acting as the workspace's ``api`` user with every
scope. Other kinds of token (personal ones with scopes) are more ``Authenticator``s tried in
turn; endpoints ask for what they need with ``principal.allows(scope)``.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Protocol

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from bot.api.errors import ApiError


class Scope(StrEnum):
    READ = "read"  # tasks, versions, runs, usage
    WRITE = "write"  # create, refine, delete
    RUN = "run"  # run a task


@dataclass(frozen=True)
class Principal:
    """The caller: the user id their work is recorded under, the workspace, what they may do."""

    user_id: str
    team_id: str = ""  # the local workspace, as the terminal uses
    scopes: frozenset[Scope] = frozenset(Scope)
    token: str = "shared"  # which kind of token proved it: "shared" is API_TOKEN

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes


class Authenticator(Protocol):
    def __call__(self, token: str) -> Principal | None:
        """The principal this token proves, or None when it proves nothing here."""


@dataclass(frozen=True)
class SharedToken:
    """``API_TOKEN``: whoever holds it acts as the ``api`` user."""

    secret: str

    def __call__(self, token: str) -> Principal | None:
        given = token.encode("latin-1", "replace")
        if self.secret and hmac.compare_digest(given, self.secret.encode("utf-8")):
            return Principal(user_id="api")
        return None


bearer = HTTPBearer(auto_error=False, scheme_name="bearerAuth")


def _challenge(error: str | None = None) -> dict[str, str]:
    value = 'Bearer realm="taskbot"' + (f', error="{error}"' if error else "")
    return {"www-authenticate": value}


def authenticate(
    credentials: HTTPAuthorizationCredentials | None, authenticators: Sequence[Authenticator]
) -> Principal:
    if credentials is None or not credentials.credentials.strip():
        raise ApiError(
            401, "unauthorized", "Send `Authorization: Bearer <API_TOKEN>`.", headers=_challenge()
        )
    token = credentials.credentials.strip()
    for check in authenticators:
        principal = check(token)
        if principal is not None:
            return principal
    raise ApiError(
        401, "unauthorized", "The bearer token is not valid.", headers=_challenge("invalid_token")
    )


def require_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Principal:
    """The dependency every endpoint but the OpenAPI document has (401 otherwise)."""
    authenticators: Sequence[Authenticator] = request.app.state.authenticators
    return authenticate(credentials, authenticators)


Caller = Annotated[Principal, Depends(require_principal)]
