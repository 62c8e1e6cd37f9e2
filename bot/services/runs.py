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
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from bot.services.errors import InvalidInput, NotFound
from bot.services.events import RunSignal
from bot.services.fairness import NO_LIMITS, RunLimits, check_run_limits, fair_order
from bot.services.inputs import profile, safe_name
from bot.services.outcomes import OutputFileView, RunOutcome, stored_files, stored_values
from bot.services.run_views import ReplyTarget, RunJob, RunView
from bot.services.tasks import TaskService
from bot.services.usage import UsageService
from bot.services.validation import check_code
from storage.kinds import RunStatus, TaskType
from storage.models import Run
from storage.uow import UnitOfWork, UnitOfWorkFactory

__all__ = [
    "OutputFileView",
    "ReplyTarget",
    "RunJob",
    "RunOutcome",
    "RunRecords",
    "RunService",
    "RunView",
]

logger = logging.getLogger(__name__)


class RunQueue(Protocol):
    """Where queued runs go: the in-process pool or Celery."""

    def submit(self, run_id: str) -> None: ...


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
            claimed = self._claim(uow, (run_id,), worker)
            uow.commit()
        return None if claimed is None else self._vetted(*claimed)

    def finish_then_start(
        self, run_id: str, outcome: RunOutcome, *, candidates: Iterable[str], worker: str
    ) -> tuple[str, RunJob | None] | None:
        """``finish`` one run and ``start`` the first of ``candidates`` still queued, in one
        transaction (one write, where the database has a single writer): the id claimed and
        its job (None when it ended at once: its code cannot run here), or None."""
        with self._uow() as uow:
            recorded, dropped = self._record(uow, run_id, outcome)
            claimed = self._claim(uow, candidates, worker)
            uow.commit()
        self._recorded(run_id, recorded=recorded, dropped=dropped)
        return None if claimed is None else (claimed[0], self._vetted(*claimed))

    def finish(self, run_id: str, outcome: RunOutcome) -> bool:
        """Record a run's outcome once; False (and nothing changed) when it had already ended."""
        with self._uow() as uow:
            recorded, dropped = self._record(uow, run_id, outcome)
            uow.commit()
        self._recorded(run_id, recorded=recorded, dropped=dropped)
        return recorded

    def _claim(
        self, uow: UnitOfWork, candidates: Iterable[str], worker: str
    ) -> tuple[str, dict[str, Any] | None] | None:
        for run_id in candidates:
            if uow.runs.claim(run_id, worker=worker, started_at=self._clock()):
                return run_id, uow.runs.job(run_id)
        return None

    def _vetted(self, run_id: str, row: dict[str, Any] | None) -> RunJob | None:
        """A claimed run's job, or None when it ended at once (recorded failed)."""
        self.signal.started(run_id)
        job = None if row is None else RunJob(run_id=run_id, **row)
        error = (
            "its version does not exist"
            if job is None
            else _code_error(job.code, self._packages, self._max_code_bytes)
        )
        if error is None:
            return job
        self.finish(
            run_id,
            RunOutcome(
                status=RunStatus.FAILED,
                error_type="CodeCheckFailed",
                error_message=f"This version cannot run here: {error}",
            ),
        )
        return None

    def _record(self, uow: UnitOfWork, run_id: str, outcome: RunOutcome) -> tuple[bool, bool]:
        """Whether the outcome was recorded (the run had not ended), and its input dropped."""
        values = stored_values(outcome) | {"finished_at": self._clock()}
        if not uow.runs.record_outcome(run_id, values=values, files=stored_files(outcome)):
            return False, False
        uow.usage.record_run(run_id, cpu_seconds=outcome.cpu_seconds, at=self._clock())
        # The input goes with the outcome, unless retention keeps it for a while.
        return True, not self._keep_inputs and uow.runs.drop_input(run_id)

    def _recorded(self, run_id: str, *, recorded: bool, dropped: bool) -> None:
        if not recorded:
            logger.warning("run %s had already ended; ignoring a second outcome", run_id)
            return
        self.signal.changed(run_id)
        if dropped:
            self._uow.scrub_soon()  # the input went with the outcome: no copy in the WAL

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
