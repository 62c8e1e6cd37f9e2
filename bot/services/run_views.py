"""What services hand out about runs: frozen views of a stored run, where its progress is
shown, and what a worker needs to execute it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row

from bot.services.outcomes import OutputFileView
from storage.kinds import ResultKind, RunStatus
from storage.models import Run, RunFile


@dataclass(frozen=True)
class RunView:
    id: str
    task_id: str
    version_number: int
    status: RunStatus
    requested_by: str
    input_name: str | None
    input_size: int | None
    input_sha256: str | None
    result_kind: ResultKind | None
    result: bytes | None
    result_truncated: bool
    stdout: str | None
    stderr: str | None
    error_type: str | None
    error_message: str | None
    traceback_tail: str | None
    killed_reason: str | None
    attempts: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    files: tuple[OutputFileView, ...] = ()
    cpu_seconds: float | None = None
    stopped_by: str | None = None  # who asked to stop it (killed_reason "stopped")

    @property
    def final(self) -> bool:
        return self.status.final

    @classmethod
    def of(cls, run: Run | Row[Any], files: Sequence[RunFile | Row[Any]] = ()) -> RunView:
        """From the ORM's run, or a row with the same columns (and files with ``name``,
        ``size`` and ``content``)."""
        return cls(
            id=run.id,
            task_id=run.task_id,
            version_number=run.version_number,
            status=RunStatus(run.status),
            requested_by=run.requested_by,
            input_name=run.input_name,
            input_size=run.input_size,
            input_sha256=run.input_sha256,
            result_kind=ResultKind(run.result_kind) if run.result_kind else None,
            result=run.result,
            result_truncated=run.result_truncated,
            stdout=run.stdout,
            stderr=run.stderr,
            error_type=run.error_type,
            error_message=run.error_message,
            traceback_tail=run.traceback_tail,
            killed_reason=run.killed_reason,
            attempts=run.attempts,
            queued_at=run.queued_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            duration_seconds=run.duration_seconds,
            files=tuple(OutputFileView(f.name, f.size, f.content) for f in files),
            cpu_seconds=run.cpu_seconds,
            stopped_by=run.stop_requested_by,
        )


@dataclass(frozen=True)
class ReplyTarget:
    """Where a run's progress is shown (a Slack thread); the service only stores it."""

    team_id: str
    enterprise_id: str | None
    channel_id: str
    thread_ts: str


@dataclass(frozen=True)
class RunJob:
    """What a worker needs to execute a claimed run: paths and bytes, nothing else."""

    run_id: str
    task_type: str
    code: str
    input_name: str | None
    input_data: bytes | None
    stop_requested: bool = False  # asked before the claim: stopped as soon as it starts
