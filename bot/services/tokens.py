"""Personal tokens: issue, list, revoke, and authenticate a request.

Tokens are opaque: ``tbp_`` and 32 random bytes (256 bits, ``secrets.token_urlsafe``). Only the
SHA-256 of the whole token is stored. A fast hash is enough because the secret is random and
long, not a password: nobody can search 2**256 values, so a slow, salted KDF would add cost to
every request and no protection; a plain digest also lets each request find its token by an
indexed lookup. Opaque rather than JWT so revocation and expiry are one database read on every
request (a JWT would need that read anyway to be revocable) and there is no signing key to keep.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.services.errors import InvalidInput, NotAllowed, NotFound, Unauthorized
from bot.services.principal import (
    Principal,
    PrincipalKind,
    Scope,
    operator,
    parse_scopes,
    scopes_text,
)
from storage.models import ApiToken
from storage.token_repos import TokenRepository
from storage.uow import UnitOfWorkFactory

PREFIX = "tbp_"
MAX_DAYS = 366
MAX_TOKENS_PER_USER = 20
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")
_TOKEN = re.compile(r"^tbp_[A-Za-z0-9_-]{43}$")


class TokenRefused(Unauthorized):
    """A token that exists but no longer works (revoked or expired); ``principal`` is whom it
    acted as, so the refusal can be audited under that person."""

    def __init__(self, message: str, *, principal: Principal, reason: str) -> None:
        super().__init__(message)
        self.principal = principal
        self.reason = reason


def _now() -> datetime:
    return datetime.now(UTC)


def digest(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


@dataclass(frozen=True)
class TokenView:
    id: str
    name: str
    team_id: str
    user_id: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    last_used_at: datetime | None

    @classmethod
    def of(cls, row: ApiToken) -> TokenView:
        return cls(
            id=row.id,
            name=row.name,
            team_id=row.team_id,
            user_id=row.user_id,
            scopes=parse_scopes(row.scopes),
            created_at=row.created_at,
            expires_at=row.expires_at,
            revoked_at=row.revoked_at,
            last_used_at=row.last_used_at,
        )

    def live(self, now: datetime) -> bool:
        return self.revoked_at is None and self.expires_at > now


@dataclass(frozen=True)
class IssuedToken:
    token: TokenView
    secret: str  # shown once, never stored


class TokenService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        admins: Collection[str] = (),
        default_days: int = 90,
        operator_token: str = "",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._uow = uow
        self._operator_token = operator_token
        self._admins = frozenset(admins)
        self.default_days = default_days
        self._clock = clock

    def is_admin(self, user_id: str) -> bool:
        return user_id in self._admins

    def issue(
        self,
        *,
        team_id: str,
        enterprise_id: str | None,
        user_id: str,
        name: str | None = None,
        scopes: Collection[Scope] | None = None,
        days: int | None = None,
    ) -> IssuedToken:
        now = self._clock()
        days = self.default_days if days is None else days
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInput(f"A token lasts 1 to {MAX_DAYS} days (got {days}).")
        chosen = frozenset(scopes) if scopes else frozenset({Scope.READ, Scope.RUN})
        with self._uow() as uow:
            repo = TokenRepository(uow.session)
            mine = [t for t in repo.of_team(team_id, user_id=user_id) if TokenView.of(t).live(now)]
            if len(mine) >= MAX_TOKENS_PER_USER:
                raise InvalidInput(
                    f"You have {len(mine)} live tokens, the most allowed: revoke one first."
                )
            name = name or _free_name({t.name for t in mine})
            if not _NAME.match(name):
                raise InvalidInput(
                    "A token's name is 1-40 letters, digits, `-`, `_` or `.` (e.g. `ci`)."
                )
            if repo.live_named(team_id, user_id, name, now) is not None:
                raise InvalidInput(f"You already have a token named `{name}`: pick another name.")
            secret = PREFIX + secrets.token_urlsafe(32)
            row = ApiToken(
                id=str(uuid.uuid4()),
                secret_hash=digest(secret),
                team_id=team_id,
                enterprise_id=enterprise_id,
                user_id=user_id,
                name=name,
                scopes=scopes_text(chosen),
                created_at=now,
                expires_at=now + timedelta(days=days),
            )
            repo.add(row)
            uow.commit()
            return IssuedToken(TokenView.of(row), secret)

    def list(self, *, team_id: str, user_id: str, everyone: bool = False) -> Sequence[TokenView]:
        """The user's tokens; with ``everyone`` (admins only) the whole workspace's."""
        if everyone and not self.is_admin(user_id):
            raise_not_admin()
        with self._uow() as uow:
            rows = TokenRepository(uow.session).of_team(
                team_id, user_id=None if everyone else user_id
            )
            return [TokenView.of(r) for r in rows]

    def revoke(self, ref: str, *, team_id: str, user_id: str) -> TokenView:
        """Revoke the user's live token named ``ref``; an admin may also give any token's id
        (or a prefix of 8+ characters) in their workspace. Takes effect on the next request."""
        now = self._clock()
        ref = ref.strip()
        with self._uow() as uow:
            repo = TokenRepository(uow.session)
            row = repo.live_named(team_id, user_id, ref, now)
            if row is None and self.is_admin(user_id) and len(ref) >= 8:
                found = [
                    t
                    for t in repo.of_team(team_id)
                    if t.id.startswith(ref.lower()) and TokenView.of(t).live(now)
                ]
                row = found[0] if len(found) == 1 else None
            if row is None:
                shown = f"`{ref}`" if _NAME.match(ref) else "by that name"
                raise NotFound(f"No live token {shown} of yours (see `/task tokens`).")
            row.revoked_at, row.revoked_by = now, user_id
            uow.commit()
            return TokenView.of(row)

    def _is_operator(self, token: str) -> bool:
        """``token`` is the operator's ``API_TOKEN`` (compared in constant time)."""
        expected = self._operator_token.encode("utf-8")
        return bool(expected) and hmac.compare_digest(token.encode("utf-8", "replace"), expected)

    def known(self, token: str) -> bool:
        """Whether ``token`` is the operator's or one this server issued (revoked and expired
        ones included: who asks is told why, and audited, by ``authenticate``). One indexed
        read, no write: what the edge asks before it reads a request's body."""
        token = token.strip()
        if self._is_operator(token):
            return True
        if not _TOKEN.match(token):
            return False
        with self._uow() as uow:
            return TokenRepository(uow.session).by_hash(digest(token)) is not None

    def authenticate(self, token: str) -> Principal:
        """Whom a bearer token acts as, checked now (revocation and expiry take effect on the
        next request): the operator's ``API_TOKEN``, or a person's token. Unknown, expired and
        revoked tokens raise ``Unauthorized`` (revoked and expired: ``TokenRefused``)."""
        token = token.strip()
        if self._is_operator(token):
            return operator()
        if not _TOKEN.match(token):
            raise Unauthorized("The bearer token is not valid.")
        now = self._clock()
        with self._uow() as uow:
            repo = TokenRepository(uow.session)
            row = repo.by_hash(digest(token))
            if row is None:
                raise Unauthorized("The bearer token is not valid.")
            principal = Principal(
                kind=PrincipalKind.PERSON,
                team_id=row.team_id,
                enterprise_id=row.enterprise_id,
                user_id=row.user_id,
                token_id=row.id,
                token_name=row.name,
                scopes=parse_scopes(row.scopes),
                admin=self.is_admin(row.user_id),
            )
            if row.revoked_at is not None:
                raise TokenRefused(
                    f"The token `{row.name}` was revoked.", principal=principal, reason="revoked"
                )
            if row.expires_at <= now:
                raise TokenRefused(
                    f"The token `{row.name}` expired: issue a new one with `/task token`.",
                    principal=principal,
                    reason="expired",
                )
            repo.touch(row.id, now)
            uow.commit()
            return principal


def raise_not_admin() -> None:
    raise NotAllowed("Only Taskbot's admins (ADMIN_USERS) may do this.")


def _free_name(taken: set[str]) -> str:
    n = 1
    while f"token-{n}" in taken:
        n += 1
    return f"token-{n}"
