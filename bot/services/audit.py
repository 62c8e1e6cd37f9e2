"""The audit of requests made with a token: who, which token, what, when, and the outcome."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.services.principal import Principal
from storage.models import AuditEntry
from storage.token_repos import AuditRepository
from storage.uow import UnitOfWorkFactory

MAX_PAGE = 200


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class AuditView:
    id: int
    at: datetime
    team_id: str
    user_id: str
    token_id: str | None
    token_name: str
    action: str
    target: str | None
    status: int
    outcome: str

    @classmethod
    def of(cls, row: AuditEntry) -> AuditView:
        return cls(
            id=row.id,
            at=row.at,
            team_id=row.team_id,
            user_id=row.user_id,
            token_id=row.token_id,
            token_name=row.token_name,
            action=row.action,
            target=row.target,
            status=row.status,
            outcome=row.outcome,
        )


@dataclass(frozen=True)
class AuditPage:
    entries: Sequence[AuditView]
    next_before: int | None  # pass as ``before`` for the next (older) page


class AuditService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        retention_days: int = 90,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._uow = uow
        self.retention_days = retention_days
        self._clock = clock

    def record(
        self,
        principal: Principal,
        *,
        action: str,
        status: int,
        outcome: str,
        target: str | None = None,
    ) -> None:
        with self._uow() as uow:
            AuditRepository(uow.session).add(
                AuditEntry(
                    at=self._clock(),
                    team_id=principal.team_id,
                    user_id=principal.user_id[:64],
                    token_id=principal.token_id,
                    token_name=principal.token_name[:64],
                    action=action[:255],
                    target=target[:64] if target else None,
                    status=status,
                    outcome=outcome[:64],
                )
            )
            uow.commit()

    def page(
        self, principal: Principal, *, before: int | None = None, limit: int = 50
    ) -> AuditPage:
        """Newest first. Admins see their workspace's entries; the operator sees every one."""
        principal.require_admin()
        limit = max(1, min(limit, MAX_PAGE))
        team = None if principal.is_operator else principal.team_id
        with self._uow() as uow:
            rows = AuditRepository(uow.session).page(team_id=team, before=before, limit=limit + 1)
            views = [AuditView.of(r) for r in rows[:limit]]
        more = len(rows) > limit
        return AuditPage(views, views[-1].id if more and views else None)

    def purge(self) -> int:
        """Delete entries older than the retention; how many (0 retention keeps everything)."""
        if self.retention_days <= 0:
            return 0
        cutoff = self._clock() - timedelta(days=self.retention_days)
        with self._uow() as uow:
            deleted = AuditRepository(uow.session).delete_before(cutoff)
            uow.commit()
            return deleted
