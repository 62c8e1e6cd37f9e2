"""Queries for personal tokens and the audit of token requests (inside a unit of work)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from storage.models import ApiToken, AuditEntry


class TokenRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, token: ApiToken) -> None:
        self.session.add(token)

    def by_hash(self, secret_hash: str) -> ApiToken | None:
        stmt = select(ApiToken).where(ApiToken.secret_hash == secret_hash)
        return self.session.scalars(stmt).first()

    def of_team(self, team_id: str, *, user_id: str | None = None) -> list[ApiToken]:
        stmt = select(ApiToken).where(ApiToken.team_id == team_id)
        if user_id is not None:
            stmt = stmt.where(ApiToken.user_id == user_id)
        return list(self.session.scalars(stmt.order_by(ApiToken.created_at, ApiToken.id)))

    def live_named(self, team_id: str, user_id: str, name: str, now: datetime) -> ApiToken | None:
        stmt = select(ApiToken).where(
            ApiToken.team_id == team_id,
            ApiToken.user_id == user_id,
            ApiToken.name == name,
            ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
        )
        return self.session.scalars(stmt).first()

    def touch(self, token_id: str, now: datetime) -> None:
        self.session.execute(
            update(ApiToken).where(ApiToken.id == token_id).values(last_used_at=now)
        )


class AuditRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, entry: AuditEntry) -> None:
        self.session.add(entry)

    def page(
        self, *, team_id: str | None, before: int | None = None, limit: int = 50
    ) -> list[AuditEntry]:
        """Newest first; ``before`` (an entry id) continues a previous page."""
        stmt = select(AuditEntry)
        if team_id is not None:
            stmt = stmt.where(AuditEntry.team_id == team_id)
        if before is not None:
            stmt = stmt.where(AuditEntry.id < before)
        return list(self.session.scalars(stmt.order_by(AuditEntry.id.desc()).limit(limit)))

    def delete_before(self, cutoff: datetime) -> int:
        result = self.session.execute(delete(AuditEntry).where(AuditEntry.at < cutoff))
        return int(getattr(result, "rowcount", 0) or 0)
