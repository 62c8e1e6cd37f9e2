"""Repositories: the only place that writes queries. They live inside a unit of work's session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from storage.models import (
    Run,
    RunFile,
    RunInput,
    RunStatus,
    SlackDelivery,
    Task,
    TaskVersion,
    UsageEvent,
)


class TaskRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, task: Task) -> None:
        self.session.add(task)

    def get(self, task_id: str) -> Task | None:
        return self.session.get(Task, task_id)

    def by_prefix(self, prefix: str, *, team_id: str | None = None, limit: int = 5) -> list[Task]:
        """Tasks whose id starts with ``prefix`` (lower-case hex and hyphens only)."""
        stmt = select(Task).where(Task.id.startswith(prefix, autoescape=True))
        if team_id is not None:
            stmt = stmt.where(Task.team_id == team_id)
        return list(self.session.scalars(stmt.order_by(Task.id).limit(limit)))

    def by_thread(self, *, channel_id: str, thread_ts: str) -> Task | None:
        stmt = select(Task).where(Task.channel_id == channel_id, Task.thread_ts == thread_ts)
        return self.session.scalars(stmt).first()

    def recent(
        self, *, team_id: str | None = None, channel_id: str | None = None, limit: int = 20
    ) -> list[Task]:
        stmt = select(Task)
        if team_id is not None:
            stmt = stmt.where(Task.team_id == team_id)
        if channel_id is not None:
            stmt = stmt.where(Task.channel_id == channel_id)
        stmt = stmt.order_by(Task.created_at.desc(), Task.id).limit(limit)
        return list(self.session.scalars(stmt))

    def reachable(
        self,
        *,
        team_id: str,
        user_id: str,
        channels: Sequence[str],
        search: str = "",
        limit: int = 25,
    ) -> list[Task]:
        """A workspace's tasks ``user_id`` created or that live in one of ``channels``, most
        recently changed first; ``search`` narrows by name or description (case-insensitive)."""
        stmt = select(Task).where(
            Task.team_id == team_id,
            or_(Task.creator == user_id, Task.channel_id.in_(list(channels))),
        )
        if search:
            pattern = "%" + search.lower().replace("%", "").replace("_", "") + "%"
            stmt = stmt.where(
                or_(
                    func.lower(Task.name).like(pattern),
                    func.lower(Task.desired_action).like(pattern),
                    Task.id.like(pattern),
                )
            )
        stmt = stmt.order_by(Task.updated_at.desc(), Task.id).limit(limit)
        return list(self.session.scalars(stmt))

    def version(self, task_id: str, number: int) -> TaskVersion | None:
        stmt = select(TaskVersion).where(
            TaskVersion.task_id == task_id, TaskVersion.number == number
        )
        return self.session.scalars(stmt).first()

    def versions(self, task_id: str) -> list[TaskVersion]:
        stmt = select(TaskVersion).where(TaskVersion.task_id == task_id)
        return list(self.session.scalars(stmt.order_by(TaskVersion.number)))

    def latest_version_number(self, task_id: str) -> int:
        stmt = select(func.max(TaskVersion.number)).where(TaskVersion.task_id == task_id)
        return self.session.scalar(stmt) or 0

    def add_version(self, version: TaskVersion) -> None:
        self.session.add(version)


class RunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, run: Run, *, input_data: bytes | None = None) -> None:
        self.session.add(run)
        if input_data is not None:
            self.session.add(RunInput(run_id=run.id, data=input_data))

    def get(self, run_id: str) -> Run | None:
        return self.session.get(Run, run_id)

    def input_data(self, run_id: str) -> bytes | None:
        row = self.session.get(RunInput, run_id)
        return None if row is None else row.data

    def drop_input(self, run_id: str) -> None:
        self.session.execute(delete(RunInput).where(RunInput.run_id == run_id))

    def files(self, run_id: str) -> list[RunFile]:
        stmt = select(RunFile).where(RunFile.run_id == run_id).order_by(RunFile.id)
        return list(self.session.scalars(stmt))

    def add_file(self, run_file: RunFile) -> None:
        self.session.add(run_file)

    def job(self, run_id: str) -> dict[str, Any] | None:
        """What a worker needs to execute a run, in one query."""
        stmt = (
            select(Task.task_type, TaskVersion.code, Run.input_name, RunInput.data)
            .select_from(Run)
            .join(Task, Task.id == Run.task_id)
            .join(
                TaskVersion,
                (TaskVersion.task_id == Run.task_id) & (TaskVersion.number == Run.version_number),
            )
            .outerjoin(RunInput, RunInput.run_id == Run.id)
            .where(Run.id == run_id)
        )
        row = self.session.execute(stmt).first()
        if row is None:
            return None
        return {
            "task_type": row.task_type,
            "code": row.code,
            "input_name": row.input_name,
            "input_data": row.data,
        }

    def record_outcome(
        self, run_id: str, *, values: dict[str, Any], files: Sequence[tuple[str, int, bytes]]
    ) -> bool:
        """Store a run's outcome unless it already has one; drops its input. True if stored."""
        result = self.session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]),
            )
            .values(**values)
        )
        if not getattr(result, "rowcount", 0):
            return False
        if files:
            self.session.execute(
                insert(RunFile),
                [{"run_id": run_id, "name": n, "size": s, "content": c} for n, s, c in files],
            )
        self.session.execute(delete(RunInput).where(RunInput.run_id == run_id))
        return True

    def latest_for_task(self, task_id: str) -> Run | None:
        stmt = (
            select(Run)
            .where(Run.task_id == task_id)
            .order_by(Run.queued_at.desc(), Run.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def latest_for_tasks(self, task_ids: Sequence[str]) -> dict[str, Run]:
        if not task_ids:
            return {}
        newest = (
            select(Run.task_id, func.max(Run.queued_at).label("at"))
            .where(Run.task_id.in_(task_ids))
            .group_by(Run.task_id)
            .subquery()
        )
        stmt = select(Run).join(
            newest, (Run.task_id == newest.c.task_id) & (Run.queued_at == newest.c.at)
        )
        return {run.task_id: run for run in self.session.scalars(stmt)}

    def with_status(self, status: RunStatus, *, limit: int = 1000) -> list[Run]:
        stmt = select(Run).where(Run.status == status.value).order_by(Run.queued_at).limit(limit)
        return list(self.session.scalars(stmt))

    def recent_by(self, user_id: str, *, task_ids: Sequence[str], limit: int = 10) -> list[Run]:
        """``user_id``'s latest runs of ``task_ids``, newest first."""
        if not task_ids:
            return []
        stmt = (
            select(Run)
            .where(Run.requested_by == user_id, Run.task_id.in_(list(task_ids)))
            .order_by(Run.queued_at.desc(), Run.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def request_stop(self, run_id: str, *, by: str) -> bool:
        """Mark a queued or running run to be stopped; False when it had already ended."""
        result = self.session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]),
            )
            .values(stop_requested_by=by[:64])
        )
        return bool(getattr(result, "rowcount", 0))

    def stop_requested(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` someone asked to stop."""
        if not run_ids:
            return []
        stmt = select(Run.id).where(Run.id.in_(list(run_ids)), Run.stop_requested_by.is_not(None))
        return list(self.session.scalars(stmt))

    def active_for_task(self, task_id: str) -> list[Run]:
        stmt = select(Run).where(
            Run.task_id == task_id,
            Run.status.in_([RunStatus.QUEUED.value, RunStatus.RUNNING.value]),
        )
        return list(self.session.scalars(stmt))

    def claim(self, run_id: str, *, worker: str, started_at: datetime) -> bool:
        """Move a queued run to running; False when another worker got it first."""
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status == RunStatus.QUEUED.value)
            .values(
                status=RunStatus.RUNNING.value,
                worker=worker,
                started_at=started_at,
                attempts=Run.attempts + 1,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    def reply_pending(
        self, *, limit: int = 50, now: datetime | None = None, exclude_teams: Sequence[str] = ()
    ) -> list[Run]:
        """Runs with a Slack message that shows another status than the run's, whose update
        has not ended for good and is not waiting out a back-off (until ``now``)."""
        conditions = [
            Run.reply_ts.is_not(None),
            or_(Run.notified_status.is_(None), Run.notified_status != Run.status),
            Run.reply_error.is_(None),
        ]
        if now is not None:
            conditions.append(or_(Run.reply_retry_at.is_(None), Run.reply_retry_at <= now))
        if exclude_teams:
            conditions.append(
                or_(Run.reply_team.is_(None), Run.reply_team.not_in(list(exclude_teams)))
            )
        stmt = select(Run).where(*conditions).order_by(Run.queued_at).limit(limit)
        return list(self.session.scalars(stmt))

    def claim_reply(self, run_id: str, *, shown: str | None, showing: str | None) -> bool:
        shown_now = Run.notified_status.is_(None) if shown is None else Run.notified_status == shown
        result = self.session.execute(
            update(Run)
            # An update that ended for good is never claimed again, even by a pass that read
            # the run before it ended.
            .where(Run.id == run_id, shown_now, Run.reply_error.is_(None))
            .values(notified_status=showing)
        )
        return bool(getattr(result, "rowcount", 0))

    def end_reply(self, run_id: str, *, error: str) -> None:
        self.session.execute(
            update(Run).where(Run.id == run_id).values(reply_error=error[:64], reply_retry_at=None)
        )

    def defer_reply(
        self, run_id: str, *, showing: str, back_to: str | None, until: datetime
    ) -> None:
        """Give a claimed update back, to be tried again from ``until``."""
        self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.notified_status == showing)
            .values(
                notified_status=back_to,
                reply_retry_at=until,
                reply_attempts=Run.reply_attempts + 1,
            )
        )

    def reply_recovered(self, run_id: str) -> None:
        self.session.execute(
            update(Run).where(Run.id == run_id).values(reply_attempts=0, reply_retry_at=None)
        )


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, key: str, *, kind: str) -> bool:
        """Record a delivery; False when it was seen before (it must not be processed again)."""
        try:
            with self.session.begin_nested():
                self.session.add(SlackDelivery(key=key, kind=kind))
        except IntegrityError:
            return False
        return True

    def forget_before(self, moment: datetime) -> int:
        result = self.session.execute(
            delete(SlackDelivery).where(SlackDelivery.received_at < moment)
        )
        return int(getattr(result, "rowcount", 0))


class UsageRepository:
    """The usage ledger: one row per generation and per run; sums for budgets and reports."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: UsageEvent) -> None:
        self.session.add(event)

    def record_run(self, run_id: str, *, cpu_seconds: float, at: datetime) -> None:
        """The ledger row of a run that just ended (its workspace, requester, task, version)."""
        row = self.session.execute(
            select(Task.team_id, Run.requested_by, Run.task_id, Run.version_number, Run.status)
            .join(Task, Task.id == Run.task_id)
            .where(Run.id == run_id)
        ).first()
        if row is None:
            return
        self.session.add(
            UsageEvent(
                at=at,
                team_id=row.team_id,
                user_id=row.requested_by,
                kind="run",
                outcome=row.status,
                task_id=row.task_id,
                version_number=row.version_number,
                run_id=run_id,
                input_tokens=0,
                output_tokens=0,
                model_requests=0,
                cpu_seconds=cpu_seconds,
            )
        )

    def totals(
        self, *, team_id: str, since: datetime, user_id: str | None = None
    ) -> tuple[int, float | None, float, int, int]:
        """(tokens, cost in USD or None when nothing was priced, CPU-seconds, model requests,
        runs) since ``since`` for a workspace, or one of its users."""
        stmt = select(
            func.coalesce(func.sum(UsageEvent.input_tokens + UsageEvent.output_tokens), 0),
            func.sum(UsageEvent.cost_usd),
            func.coalesce(func.sum(UsageEvent.cpu_seconds), 0.0),
            func.coalesce(func.sum(UsageEvent.model_requests), 0),
            func.count(UsageEvent.run_id),
        ).where(UsageEvent.team_id == team_id, UsageEvent.at >= since)
        if user_id is not None:
            stmt = stmt.where(UsageEvent.user_id == user_id)
        tokens, cost, cpu, requests, runs = self.session.execute(stmt).one()
        return (
            int(tokens),
            None if cost is None else float(cost),
            float(cpu),
            int(requests),
            int(runs),
        )

    def breakdown(
        self, *, team_id: str, since: datetime, by: str, limit: int = 20
    ) -> list[tuple[str, int, float | None, float, int, int]]:
        """Per user (``by="user"``) or per task: key, tokens, cost, CPU-seconds, requests, runs;
        the biggest spenders of tokens first."""
        key = UsageEvent.user_id if by == "user" else func.coalesce(UsageEvent.task_id, "")
        tokens = func.coalesce(func.sum(UsageEvent.input_tokens + UsageEvent.output_tokens), 0)
        stmt = (
            select(
                key.label("key"),
                tokens.label("tokens"),
                func.sum(UsageEvent.cost_usd),
                func.coalesce(func.sum(UsageEvent.cpu_seconds), 0.0),
                func.coalesce(func.sum(UsageEvent.model_requests), 0),
                func.count(UsageEvent.run_id),
            )
            .where(UsageEvent.team_id == team_id, UsageEvent.at >= since)
            .group_by(key)
            .order_by(tokens.desc(), key)
            .limit(limit)
        )
        return [
            (str(k), int(t), None if c is None else float(c), float(cpu), int(r), int(n))
            for k, t, c, cpu, r, n in self.session.execute(stmt)
        ]

    def task_names(self, task_ids: Sequence[str]) -> dict[str, str]:
        if not task_ids:
            return {}
        stmt = select(Task.id, Task.name).where(Task.id.in_(task_ids))
        return {tid: name or "" for tid, name in self.session.execute(stmt)}
