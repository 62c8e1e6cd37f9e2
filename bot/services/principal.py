"""Who a request acts as: the operator (``API_TOKEN``) or one Slack user (a personal token)."""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

from bot.services.errors import InvalidInput, NotAllowed


class Scope(enum.StrEnum):
    READ = "read"  # list and show tasks, read runs
    RUN = "run"  # run tasks
    WRITE = "write"  # create, refine and delete tasks


ALL_SCOPES = frozenset(Scope)
SCOPE_HELP = {
    Scope.READ: "list and show tasks, read runs and the audit (admins)",
    Scope.RUN: "run tasks",
    Scope.WRITE: "create, refine and delete tasks",
}


class PrincipalKind(enum.StrEnum):
    OPERATOR = "operator"
    PERSON = "person"


def parse_scopes(text: str | Iterable[str]) -> frozenset[Scope]:
    words = text.split(",") if isinstance(text, str) else list(text)
    scopes: set[Scope] = set()
    for word in (w.strip().lower() for w in words):
        if not word:
            continue
        try:
            scopes.add(Scope(word))
        except ValueError:
            shown = f"`{word[:20]}`" if word.isalnum() else "given"
            raise InvalidInput(
                f"Unknown scope {shown}: use {', '.join(s.value for s in Scope)}."
            ) from None
    if not scopes:
        raise InvalidInput(f"Give at least one scope: {', '.join(s.value for s in Scope)}.")
    return frozenset(scopes)


def scopes_text(scopes: Iterable[Scope]) -> str:
    return ",".join(s.value for s in Scope if s in set(scopes))


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    team_id: str
    enterprise_id: str | None
    user_id: str
    token_id: str | None
    token_name: str
    scopes: frozenset[Scope]
    admin: bool = False

    @property
    def is_operator(self) -> bool:
        return self.kind is PrincipalKind.OPERATOR

    def require(self, scope: Scope) -> None:
        """Refuse (403) what this token's scopes do not cover, naming the missing scope."""
        if scope not in self.scopes:
            raise NotAllowed(
                f"This token lacks the `{scope.value}` scope ({SCOPE_HELP[scope]}); "
                f"it has: {scopes_text(self.scopes) or 'none'}. Issue one with "
                f"`/task token <name> --scopes {scope.value}`."
            )

    def require_admin(self) -> None:
        if not (self.is_operator or self.admin):
            raise NotAllowed("Only Taskbot's admins (ADMIN_USERS) may do this.")


def operator(*, user_id: str = "api", team_id: str = "") -> Principal:
    """The operator's ``API_TOKEN``: every scope, in the local workspace."""
    return Principal(
        kind=PrincipalKind.OPERATOR,
        team_id=team_id,
        enterprise_id=None,
        user_id=user_id,
        token_id=None,
        token_name="API_TOKEN",
        scopes=ALL_SCOPES,
        admin=True,
    )
