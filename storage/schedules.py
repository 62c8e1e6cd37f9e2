"""Schedules in the database; ``advance`` is the lease every process races for."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from storage.models import Schedule


class ScheduleRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, schedule: Schedule) -> None:
        self.session.add(schedule)

    def get(self, schedule_id: str) -> Schedule | None:
        return self.session.get(Schedule, schedule_id)

    def of_task(self, task_id: str) -> list[Schedule]:
        stmt = select(Schedule).where(Schedule.task_id == task_id).order_by(Schedule.created_at)
        return list(self.session.scalars(stmt))

    def of_team(self, team_id: str, *, owner: str | None = None) -> list[Schedule]:
        stmt = select(Schedule).where(Schedule.team_id == team_id)
        if owner is not None:
            stmt = stmt.where(Schedule.owner == owner)
        return list(self.session.scalars(stmt.order_by(Schedule.created_at)))

    def due(self, now: datetime, *, limit: int = 100) -> list[Schedule]:
        stmt = (
            select(Schedule)
            .where(Schedule.paused.is_(False), Schedule.next_at <= now)
            .order_by(Schedule.next_at)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def advance(self, schedule_id: str, *, seen: datetime, to: datetime) -> bool:
        """Move ``next_at`` from the tick this process read to the next one, in one
        conditional UPDATE: True for exactly one of the processes that read ``seen``."""
        result = self.session.execute(
            update(Schedule)
            .where(Schedule.id == schedule_id, Schedule.next_at == seen, Schedule.paused.is_(False))
            .values(next_at=to)
        )
        return bool(getattr(result, "rowcount", 0))

    def uncounted(self) -> list[Schedule]:
        """Schedules whose last run's end has not been counted yet."""
        stmt = select(Schedule).where(
            Schedule.last_run_id.is_not(None),
            or_(Schedule.counted_run_id.is_(None), Schedule.counted_run_id != Schedule.last_run_id),
        )
        return list(self.session.scalars(stmt))

    def count(self, schedule_id: str, *, run_id: str, failed: bool, pause_after: int) -> int | None:
        """Count the end of ``run_id`` once (conditional UPDATE); the consecutive failures
        after it, or None when another process counted it first."""
        result = self.session.execute(
            update(Schedule)
            .where(
                Schedule.id == schedule_id,
                Schedule.last_run_id == run_id,
                or_(Schedule.counted_run_id.is_(None), Schedule.counted_run_id != run_id),
            )
            .values(
                counted_run_id=run_id,
                failures=Schedule.failures + 1 if failed else 0,
            )
        )
        if not getattr(result, "rowcount", 0):
            return None
        schedule = self.session.get(Schedule, schedule_id)
        assert schedule is not None
        self.session.refresh(schedule)
        if schedule.failures >= pause_after:
            schedule.paused = True
        return schedule.failures
