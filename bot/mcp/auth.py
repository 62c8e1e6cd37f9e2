"""Who is calling the MCP server: a verifier turns a bearer token into a ``Principal`` or
refuses it. ``API_TOKEN`` is the operator's token (every workspace, like the HTTP API); a
verifier for per-user tokens returns the person and their workspace instead, and plugs in
where ``api_token_verifier`` is passed (``bot.roles.web``)."""

from __future__ import annotations

import hmac
from collections.abc import Callable, Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class Principal:
    user_id: str  # recorded as who asked for a run
    team_id: str | None  # None: every workspace (the operator's API_TOKEN)
    scopes: frozenset[str] | None = None  # a personal token's (read, run, write); None: all

    def may(self, scope: str) -> bool:
        return self.scopes is None or scope in self.scopes


Verifier = Callable[[str], Principal | None]

OPERATOR = "mcp"  # the requester recorded for runs asked for with API_TOKEN


def api_token_verifier(api_token: str) -> Verifier:
    """Accepts exactly ``api_token`` (compared in constant time); nothing when it is empty."""
    expected = api_token.encode()

    def verify(token: str) -> Principal | None:
        if not expected or not hmac.compare_digest(token.encode(), expected):
            return None
        return Principal(user_id=OPERATOR, team_id=None)

    return verify


def chain(*verifiers: Verifier) -> Verifier:
    """The first verifier that accepts the token decides."""

    def verify(token: str) -> Principal | None:
        for one in verifiers:
            found = one(token)
            if found is not None:
                return found
        return None

    return verify


def bearer(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header (case-insensitive scheme)."""
    value = headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
