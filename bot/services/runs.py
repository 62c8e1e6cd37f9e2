"""The run service: request a run, hand it to a worker, record every step of its lifecycle.

A run is stored ``queued`` (with its input) before anything executes; a worker claims it
(``running``), executes it in the sandbox and records the outcome. The queue and the sandbox
are ports: the worker package provides them, so this module imports neither.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time
import uuid
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Row

from bot.services.errors import InvalidInput, NotFound, NotReady
from bot.services.events import RunSignal
from bot.services.fairness import NO_LIMITS, RunLimits, check_run_limits, fair_order
from bot.services.inputs import profile, safe_name
from bot.services.outcomes import OutputFileView, RunOutcome, stored_files, stored_values
from bot.services.tasks import TaskService
from bot.services.usage import UsageService
from bot.services.validation import check_code
from storage.kinds import ResultKind, RunStatus, TaskType
from storage.models import Run, RunFile
from storage.uow import UnitOfWorkFactory

__all__ = ["OutputFileView", "RunOutcome", "RunRecords", "RunService", "RunView"]

logger = logging.getLogger(__name__)


class RunQueue(Protocol):
    """Where queued runs go: the in-process pool or Celery."""

    def submit(self, run_id: str) -> None: ...


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


def _now() -> datetime:
    return datetime.now(UTC)


STALE_GRACE_SECONDS = 60
WORKER_LOST = RunOutcome(
    status=RunStatus.FAILED,
    error_type="WorkerLost",
    error_message="The worker running this stopped before it finished. Run it again.",
)


class RunRecords:
    """What a worker needs: claim a run, record its outcome, look runs up. It knows no queue;
    every committed claim and outcome is told to ``signal``."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        packages: Sequence[str],
        max_code_bytes: int,
        wall_seconds: float,
        signal: RunSignal,
        clock: Callable[[], datetime] = _now,
        usage: UsageService | None = None,
        keep_inputs: bool = False,
    ) -> None:
        self._usage = usage
        self._keep_inputs = keep_inputs  # RETAIN_INPUT_DAYS > 0: retention removes them
        self._uow = uow
        self._packages = tuple(packages)
        self._max_code_bytes = max_code_bytes
        self._wall_seconds = wall_seconds
        self._clock = clock
        self.signal = signal

    def get(self, run_id: str) -> RunView:
        with self._uow() as uow:
            run = uow.runs.get(run_id)
            if run is None:
                raise NotFound(f"No run {run_id}.")
            return RunView.of(run, uow.runs.files(run_id))

    def stop_requested(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` someone asked to stop (``bot.services.stops``)."""
        with self._uow() as uow:
            return uow.runs.stop_requested(run_ids)

    def queued_ids(self, *, limit: int = 1000) -> list[str]:
        with self._uow() as uow:
            return [r.id for r in uow.runs.with_status(RunStatus.QUEUED, limit=limit)]

    # --- executing (called by workers) ------------------------------------------------------

    def fair_queue(self, *, among: Collection[str] | None = None) -> Iterator[str]:
        """Queued run ids in the order a free slot should take them (users in turn), lazily."""
        return fair_order(self._uow, among=among)

    def start(self, run_id: str, *, worker: str) -> RunJob | None:
        """Claim a queued run; None when it is gone or another worker has it."""
        with self._uow() as uow:
            if not uow.runs.claim(run_id, worker=worker, started_at=self._clock()):
                return None
            row = uow.runs.job(run_id)
            uow.commit()
        self.signal.started(run_id)
        if row is None:
            raise NotReady(f"Run {run_id} names a version that does not exist.")
        job = RunJob(run_id=run_id, **row)
        error = _code_error(job.code, self._packages, self._max_code_bytes)
        if error is not None:
            self.finish(
                run_id,
                RunOutcome(
                    status=RunStatus.FAILED,
                    error_type="CodeCheckFailed",
                    error_message=f"This version cannot run here: {error}",
                ),
            )
            return None
        return job

    def finish(self, run_id: str, outcome: RunOutcome) -> bool:
        """Record a run's outcome once; False (and nothing changed) when it had already ended."""
        with self._uow() as uow:
            values = stored_values(outcome) | {"finished_at": self._clock()}
            recorded = uow.runs.record_outcome(run_id, values=values, files=stored_files(outcome))
            dropped = False
            if recorded:
                uow.usage.record_run(run_id, cpu_seconds=outcome.cpu_seconds, at=self._clock())
                # The input goes with the outcome, unless retention keeps it for a while.
                dropped = not self._keep_inputs and uow.runs.drop_input(run_id)
            uow.commit()
        if not recorded:
            logger.warning("run %s had already ended; ignoring a second outcome", run_id)
        else:
            self.signal.changed(run_id)
            if dropped:
                self._uow.scrub_soon()  # the input went with the outcome: no copy in the WAL
        return recorded

    def wait(self, run_id: str, *, timeout: float, sweep: float = 2.0) -> RunView:
        """The run once it has ended (or as it is when ``timeout`` runs out). Woken by the
        signal; the database is read again at least every ``sweep`` seconds, so a change no
        event announced (another process, no relay) is still seen."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.signal.count
            view = self.get(run_id)
            left = deadline - time.monotonic()
            if view.final or left <= 0:
                return view
            self.signal.wait_after(seen, min(sweep, left))

    @property
    def stale_after(self) -> timedelta:
        """How long a run may stay ``running`` before its worker is presumed dead."""
        return timedelta(seconds=self._wall_seconds + STALE_GRACE_SECONDS)

    def fail_abandoned(self, *, worker_alive: Callable[[str], bool]) -> list[str]:
        """Mark failed every ``running`` run whose worker is gone or overdue; returns their ids."""
        stale_before = self._clock() - self.stale_after
        failed: list[str] = []
        with self._uow() as uow:
            for run in uow.runs.with_status(RunStatus.RUNNING):
                gone = not worker_alive(run.worker or "")
                if gone or (run.started_at is not None and run.started_at < stale_before):
                    failed.append(run.id)
        for run_id in failed:
            self.finish(run_id, WORKER_LOST)
        return failed

    def overdue_queued(self, *, older_than: timedelta) -> list[str]:
        """Queued runs waiting longer than ``older_than``: their queue message may be lost."""
        cutoff = self._clock() - older_than
        with self._uow() as uow:
            return [r.id for r in uow.runs.with_status(RunStatus.QUEUED) if r.queued_at < cutoff]


class RunService(RunRecords):
    """Requesting runs on top of the records: a requested run is handed to ``queue``."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        tasks: TaskService,
        queue: RunQueue | None,
        packages: Sequence[str],
        max_code_bytes: int,
        max_input_bytes: int,
        wall_seconds: float,
        signal: RunSignal,
        clock: Callable[[], datetime] = _now,
        usage: UsageService | None = None,
        limits: RunLimits = NO_LIMITS,
        keep_inputs: bool = False,
    ) -> None:
        super().__init__(
            uow=uow,
            packages=packages,
            max_code_bytes=max_code_bytes,
            wall_seconds=wall_seconds,
            signal=signal,
            clock=clock,
            usage=usage,
            keep_inputs=keep_inputs,
        )
        self._tasks = tasks
        self.queue = queue
        self.max_input_bytes = max_input_bytes
        self.limits = limits

    # --- requesting -----------------------------------------------------------------------

    def request(
        self,
        ref: str,
        *,
        requested_by: str,
        input_data: bytes | None = None,
        input_name: str | None = None,
        version: int | None = None,
        team_id: str | None = None,
        submit: bool = True,
        reply: ReplyTarget | None = None,
    ) -> RunView:
        """Record a run as queued (with its input), then hand it to the queue."""
        task = self._tasks.run_target(ref, version=version, team_id=team_id)
        if task.task_type is TaskType.GENERATOR and input_data is not None:
            raise InvalidInput(
                f"Task {task.task_id[:8]} is a generator: it takes no input file. "
                "Run it without one."
            )
        if task.task_type is TaskType.PASSTHROUGH and input_data is None:
            raise InvalidInput(
                f"Task {task.task_id[:8]} needs an input file: run it with one (a file or "
                "`input_text` in the API, `--input FILE` or `--text` in the terminal)."
            )
        if input_data is not None and len(input_data) > self.max_input_bytes:
            raise InvalidInput(
                f"The file is too large: {_mib(len(input_data))}, the limit is "
                f"{_mib(self.max_input_bytes)} (SANDBOX_MAX_INPUT_MB)."
            )
        if self._usage is not None:
            self._usage.check(team_id=task.team_id, user_id=requested_by, model=False)
        name = safe_name(input_name) if input_data is not None else None
        # A file of a kind Taskbot cannot read is refused here, with what to do instead.
        described = profile(name or "input", input_data) if input_data is not None else None
        run = Run(
            id=str(uuid.uuid4()),
            task_id=task.task_id,
            version_number=task.version_number,
            status=RunStatus.QUEUED.value,
            requested_by=requested_by,
            input_name=name,
            input_size=None if input_data is None else len(input_data),
            input_sha256=None if input_data is None else hashlib.sha256(input_data).hexdigest(),
            input_profile=described.describe() if described is not None else None,
            queued_at=self._clock(),
            result_truncated=False,
            attempts=0,
            reply_attempts=0,
        )
        if reply is not None:
            run.reply_team, run.reply_enterprise = reply.team_id, reply.enterprise_id
            run.reply_channel, run.reply_thread_ts = reply.channel_id, reply.thread_ts
        with self._uow() as uow:  # the queue's share is counted where the run is stored
            check_run_limits(uow, self.limits, user=requested_by, channel=task.channel_id)
            uow.runs.insert(run, input_data=input_data)
            uow.commit()
            view = RunView.of(run)
        if submit:
            self.submit(view.id)
        return view

    def submit(self, run_id: str) -> None:
        if self.queue is None:
            return
        try:
            self.queue.submit(run_id)
        except Exception:
            # The run is safely queued in the database; recovery hands it out again.
            logger.exception("could not hand run %s to the queue; it stays queued", run_id)

    def attach_reply(self, run_id: str, *, message_ts: str, shown_status: RunStatus) -> None:
        with self._uow() as uow:
            status = uow.runs.set_reply(run_id, message_ts=message_ts, shown_status=shown_status)
            if status is None:
                raise NotFound(f"No run {run_id}.")
            uow.commit()
        shown = RunStatus(shown_status)
        if status == RunStatus.RUNNING.value and shown is RunStatus.QUEUED:
            # It started while its message was being posted: shown running only later.
            self.signal.started(run_id)
        elif status != shown.value:
            # The run moved on while its message was being posted (its own change was heard
            # before there was a message to update): look at it again.
            self.signal.changed(run_id)


@functools.lru_cache(maxsize=256)
def _code_error(code: str, packages: tuple[str, ...], max_bytes: int) -> str | None:
    """The static check before every run (cached: it depends only on its arguments)."""
    return check_code(code, allowed_packages=packages, max_bytes=max_bytes).error


def _mib(size: int) -> str:
    return f"{size / 2**20:.1f} MiB"
