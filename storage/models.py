"""The schema: tasks, their versions, runs, processed Slack deliveries and the usage ledger."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import TypeDecorator

from storage.kinds import RunStatus, TaskState, VersionState


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite forgets the zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Task(Base):
    __tablename__ = "tasks"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    team_id: Mapped[str] = mapped_column(String(32), default="")
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    channel_id: Mapped[str | None] = mapped_column(String(32))
    thread_ts: Mapped[str | None] = mapped_column(String(32))
    creator: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(16), default="cli")
    desired_action: Mapped[str] = mapped_column(Text)
    task_type: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default=TaskState.GENERATING.value)
    state_detail: Mapped[str | None] = mapped_column(Text)
    name: Mapped[str | None] = mapped_column(String(100))
    current_version: Mapped[int | None] = mapped_column(Integer)
    # The version scheduled, workflow and MCP runs use instead of the current one (None: current).
    pinned_version: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)

    versions: Mapped[list[TaskVersion]] = relationship(
        back_populates="task", order_by="TaskVersion.number", cascade="all, delete-orphan"
    )

    __table_args__ = (
        Index("ix_tasks_team_channel_created", "team_id", "channel_id", "created_at"),
        Index("ix_tasks_thread", "channel_id", "thread_ts"),
    )


class TaskVersion(Base):
    __tablename__ = "task_versions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    number: Mapped[int] = mapped_column(Integer)
    code: Mapped[str] = mapped_column(Text)
    meta: Mapped[dict[str, Any]] = mapped_column("metadata", JSON)
    request_kind: Mapped[str] = mapped_column(String(16))  # a RequestKind
    request_text: Mapped[str] = mapped_column(Text)
    requested_by: Mapped[str] = mapped_column(String(64))
    change_summary: Mapped[str | None] = mapped_column(Text)
    model: Mapped[str] = mapped_column(String(100))
    prompt_version: Mapped[str] = mapped_column(String(32))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    model_requests: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # A VersionState: "ready" when its checks passed (it may become current), "draft" when not.
    state: Mapped[str] = mapped_column(
        String(16), default=VersionState.READY.value, server_default=VersionState.READY.value
    )
    checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    check_results: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    replaced_checks: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    check_seconds: Mapped[float | None] = mapped_column(Float)
    # What this version cost: CPU of its checks, a money estimate (None: the price is unknown),
    # and the response format the model server accepted (json_schema, json_object or text).
    check_cpu_seconds: Mapped[float | None] = mapped_column(Float)
    cost_usd: Mapped[float | None] = mapped_column(Float)
    response_mode: Mapped[str | None] = mapped_column(String(16))

    task: Mapped[Task] = relationship(back_populates="versions")

    __table_args__ = (UniqueConstraint("task_id", "number", name="uq_task_versions_task_number"),)


class Run(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"))
    version_number: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default=RunStatus.QUEUED.value)
    requested_by: Mapped[str] = mapped_column(String(64))
    input_name: Mapped[str | None] = mapped_column(String(255))
    input_size: Mapped[int | None] = mapped_column(BigInteger)
    input_sha256: Mapped[str | None] = mapped_column(String(64))
    # The file as the model is told of it on a refinement (bot/services/inputs.py).
    input_profile: Mapped[str | None] = mapped_column(Text)
    result_kind: Mapped[str | None] = mapped_column(String(8))  # a ResultKind
    result: Mapped[bytes | None] = mapped_column(LargeBinary)
    result_truncated: Mapped[bool] = mapped_column(Boolean, default=False)
    stdout: Mapped[str | None] = mapped_column(Text)
    stderr: Mapped[str | None] = mapped_column(Text)
    error_type: Mapped[str | None] = mapped_column(String(200))
    error_message: Mapped[str | None] = mapped_column(Text)
    traceback_tail: Mapped[str | None] = mapped_column(Text)
    killed_reason: Mapped[str | None] = mapped_column(String(32))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    worker: Mapped[str | None] = mapped_column(String(255))
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    duration_seconds: Mapped[float | None] = mapped_column(Float)
    # Where the run's Slack message lives (None for runs from the terminal or the API), and the
    # status that message shows, so any web process can bring it up to date.
    reply_team: Mapped[str | None] = mapped_column(String(32))
    reply_enterprise: Mapped[str | None] = mapped_column(String(32))
    reply_channel: Mapped[str | None] = mapped_column(String(32))
    reply_thread_ts: Mapped[str | None] = mapped_column(String(32))
    reply_ts: Mapped[str | None] = mapped_column(String(32))
    notified_status: Mapped[str | None] = mapped_column(String(16))
    # Slack's error when updating the message ended for good (message deleted, channel archived,
    # app uninstalled); a transient failure instead waits until reply_retry_at, backing off.
    reply_error: Mapped[str | None] = mapped_column(String(64))
    reply_retry_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    reply_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    cpu_seconds: Mapped[float | None] = mapped_column(Float)  # user + system CPU of the run
    # Who asked to stop the run (a Slack user id, or "cli"/"api:..."): whichever worker holds
    # it sees this and kills it (bot/services/stops.py, bot/worker/stopwatch.py).
    stop_requested_by: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        Index("ix_runs_task_queued", "task_id", "queued_at"),
        Index("ix_runs_status", "status"),
        Index("ix_runs_user_started", "requested_by", "started_at"),  # whose turn (fairness)
        Index("ix_runs_reply_pending", "reply_channel", "notified_status"),
    )


class RunInput(Base):
    """A queued run's input bytes, kept until the run ends so any worker can pick it up."""

    __tablename__ = "run_inputs"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    data: Mapped[bytes] = mapped_column(LargeBinary)


class RunFile(Base):
    """A file the run wrote under ``output/``."""

    __tablename__ = "run_files"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    content: Mapped[bytes] = mapped_column(LargeBinary)


class SlackDelivery(Base):
    """A Slack delivery already handled: its identity (event id, or command/upload key)."""

    __tablename__ = "slack_deliveries"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)


class UsageEvent(Base):
    """One line of the usage ledger: a generation (all its model requests and its checks) or a
    run. Budgets add these up; they are never deleted with a task, so deleting a task does not
    give its budget back."""

    __tablename__ = "usage_events"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))  # generation | run
    outcome: Mapped[str] = mapped_column(String(16))  # ready, draft, failed, succeeded, ...
    task_id: Mapped[str | None] = mapped_column(String(36))
    version_number: Mapped[int | None] = mapped_column(Integer)
    run_id: Mapped[str | None] = mapped_column(String(36), unique=True)
    model: Mapped[str | None] = mapped_column(String(100))
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    model_requests: Mapped[int] = mapped_column(Integer, default=0)
    cpu_seconds: Mapped[float] = mapped_column(Float, default=0.0)
    cost_usd: Mapped[float | None] = mapped_column(Float)

    __table_args__ = (
        Index("ix_usage_events_team_at", "team_id", "at"),
        Index("ix_usage_events_team_user_at", "team_id", "user_id", "at"),
    )


class Schedule(Base):
    """A task run on a cron schedule in its owner's time zone. ``next_at`` is the lease: the
    process whose conditional UPDATE moves it from the tick it read to the next one runs that
    tick; every other process's UPDATE matches no row."""

    __tablename__ = "schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    task_id: Mapped[str] = mapped_column(ForeignKey("tasks.id", ondelete="CASCADE"), index=True)
    team_id: Mapped[str] = mapped_column(String(32), default="")
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    owner: Mapped[str] = mapped_column(String(64))
    cron: Mapped[str] = mapped_column(String(100))
    timezone: Mapped[str] = mapped_column(String(64))
    input_name: Mapped[str | None] = mapped_column(String(255))
    input_data: Mapped[bytes | None] = mapped_column(LargeBinary)
    next_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    failures: Mapped[int] = mapped_column(Integer, default=0)  # consecutive failed runs
    last_run_id: Mapped[str | None] = mapped_column(String(36))
    counted_run_id: Mapped[str | None] = mapped_column(String(36))  # last run whose end counted
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (Index("ix_schedules_due", "paused", "next_at"),)


class ApiToken(Base):
    """A personal token: who it acts as, what it may do, until when. Only the SHA-256 of its
    secret is kept; the secret itself is shown once, to its owner."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    secret_hash: Mapped[str] = mapped_column(String(64), unique=True)
    team_id: Mapped[str] = mapped_column(String(32))
    enterprise_id: Mapped[str | None] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[str] = mapped_column(String(64))  # comma-separated: read,run,write
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_by: Mapped[str | None] = mapped_column(String(64))
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_api_tokens_team_user", "team_id", "user_id"),)


class AuditEntry(Base):
    """One request made with a token: who, which token, what, when, and how it ended."""

    __tablename__ = "audit_entries"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    team_id: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[str] = mapped_column(String(64))
    token_id: Mapped[str | None] = mapped_column(String(36))
    token_name: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(255))  # e.g. "POST /api/task/{id}/run"
    target: Mapped[str | None] = mapped_column(String(64))  # the id it named, if any
    status: Mapped[int] = mapped_column(Integer)
    outcome: Mapped[str] = mapped_column(String(64))  # ok, or the error code

    __table_args__ = (Index("ix_audit_entries_team_id", "team_id", "id"),)
