"""Repositories: the only place that writes queries. They live inside a unit of work's session."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Row, Table, and_, bindparam, delete, func, insert, literal, or_, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from storage.models import Run, SlackDelivery, Task, TaskVersion, UsageEvent, utcnow
from storage.run_repository import RunRepository

__all__ = ["DeliveryRepository", "RunRepository", "TaskRepository", "UsageRepository"]


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

    def by_thread(self, *, channel_id: str, thread_ts: str) -> Row[Any] | None:
        """The task whose Slack thread this is: a Core row of its columns (a thread message
        asks this of every reply in every thread the app is in, so no ORM object is built)."""
        self.session.flush()
        params = {"p_channel": channel_id, "p_thread": thread_ts}
        return self.session.connection().execute(_BY_THREAD, params).first()

    def run_target(self, task_id: str, *, version: int | None) -> Row[Any] | None:
        """A task's columns a run needs and ``number``: that of its version ``version`` (else
        its current one), None when there is no such version; in one query. None when there
        is no such task."""
        self.session.flush()
        params = {"p_task": task_id, "p_version": version}
        return cast(
            "Row[Any] | None", self.session.connection().execute(_RUN_TARGET, params).first()
        )

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


_tasks = cast(Table, Task.__table__)
_versions = cast(Table, TaskVersion.__table__)
_BY_THREAD = (
    select(_tasks)
    .where(
        _tasks.c.channel_id == bindparam("p_channel"), _tasks.c.thread_ts == bindparam("p_thread")
    )
    .limit(1)
)
_RUN_TARGET = (
    select(
        _tasks.c.id,
        _tasks.c.team_id,
        _tasks.c.channel_id,
        _tasks.c.task_type,
        _versions.c.number,
    )
    .select_from(
        _tasks.outerjoin(
            _versions,
            and_(
                _versions.c.task_id == _tasks.c.id,
                _versions.c.number
                == func.coalesce(
                    bindparam("p_version", type_=_versions.c.number.type), _tasks.c.current_version
                ),
            ),
        )
    )
    .where(_tasks.c.id == bindparam("p_task"))
)


class DeliveryRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def record(self, key: str, *, kind: str) -> bool:
        """Record a delivery; False when it was seen before (it must not be processed again).
        One statement that skips a key already there (no savepoint, no error to catch)."""
        values = {"key": key, "kind": kind, "received_at": utcnow()}
        self.session.flush()
        connection = self.session.connection()
        if connection.dialect.name == "sqlite":
            result = connection.execute(_RECORD_SQLITE, values)
            return bool(getattr(result, "rowcount", 0))
        # PostgreSQL (psycopg gives no row count here): the row comes back only if inserted.
        return connection.execute(_RECORD_POSTGRESQL, values).first() is not None

    def forget_before(self, moment: datetime) -> int:
        result = self.session.execute(
            delete(SlackDelivery).where(SlackDelivery.received_at < moment)
        )
        return int(getattr(result, "rowcount", 0))


_deliveries = cast(Table, SlackDelivery.__table__)
_RECORD_SQLITE = sqlite_insert(_deliveries).on_conflict_do_nothing()
_RECORD_POSTGRESQL = (
    postgresql_insert(_deliveries).on_conflict_do_nothing().returning(_deliveries.c.key)
)
_usage = cast(Table, UsageEvent.__table__)
_RECORD_RUN = insert(_usage).from_select(
    [
        "at",
        "team_id",
        "user_id",
        "kind",
        "outcome",
        "task_id",
        "version_number",
        "run_id",
        "input_tokens",
        "output_tokens",
        "model_requests",
        "cpu_seconds",
    ],
    select(
        bindparam("p_at", type_=_usage.c.at.type),
        Task.team_id,
        Run.requested_by,
        literal("run"),
        Run.status,
        Run.task_id,
        Run.version_number,
        Run.id,
        literal(0),
        literal(0),
        literal(0),
        bindparam("p_cpu", type_=_usage.c.cpu_seconds.type),
    )
    .join(Task, Task.id == Run.task_id)
    .where(Run.id == bindparam("p_run")),
)


class UsageRepository:
    """The usage ledger: one row per generation and per run; sums for budgets and reports."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, event: UsageEvent) -> None:
        self.session.add(event)

    def record_run(self, run_id: str, *, cpu_seconds: float, at: datetime) -> None:
        """The ledger row of a run that just ended (its workspace, requester, task, version),
        in one statement."""
        self.session.flush()
        self.session.connection().execute(
            _RECORD_RUN, {"p_run": run_id, "p_cpu": cpu_seconds, "p_at": at}
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
