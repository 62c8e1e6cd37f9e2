"""Executes one claimed run in the sandbox and records its outcome through the run service."""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Collection, Iterator

from bot.config import Settings
from bot.services.checks import Execute, Execution
from bot.services.runs import OutputFileView, RunJob, RunOutcome, RunRecords
from bot.worker.identity import worker_id
from bot.worker.sandbox import Sandbox, SandboxLimits, SandboxResult, StopSwitch
from bot.worker.stopwatch import StopWatch
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)


def limits_from(settings: Settings) -> SandboxLimits:
    return SandboxLimits(
        wall_seconds=settings.sandbox_wall_seconds,
        cpu_seconds=settings.sandbox_cpu_seconds,
        memory_bytes=settings.sandbox_memory_mb * 2**20,
        max_processes=settings.sandbox_max_processes,
        max_file_bytes=settings.sandbox_max_file_mb * 2**20,
        max_open_files=settings.sandbox_max_open_files,
        max_output_bytes=settings.sandbox_max_output_kb * 1024,
        max_input_bytes=settings.sandbox_max_input_mb * 2**20,
    )


def build_sandbox(settings: Settings, *, slots: int | None = None) -> Sandbox:
    return Sandbox(
        slots=slots or settings.worker_concurrency,
        limits=limits_from(settings),
        packages=settings.sandbox_packages,
        allow_insecure=settings.sandbox_insecure,
    )


def outcome_of(result: SandboxResult) -> RunOutcome:
    stdout = result.stdout + ("\n[stdout truncated]" if result.stdout_truncated else "")
    stderr = result.stderr + ("\n[stderr truncated]" if result.stderr_truncated else "")
    return RunOutcome(
        status=RunStatus(result.status),
        result_kind=result.result_kind,
        result=result.result,
        result_truncated=result.result_truncated,
        stdout=stdout,
        stderr=stderr,
        error_type=result.error_type,
        error_message=result.error_message,
        traceback_tail=result.traceback_tail,
        killed_reason=result.killed_reason,
        duration_seconds=result.duration_seconds,
        cpu_seconds=result.cpu_seconds,
        files=tuple(OutputFileView(f.name, f.size, f.content) for f in result.output_files),
    )


UNSTORABLE = RunOutcome(
    status=RunStatus.FAILED,
    error_type="OutcomeNotStored",
    error_message="The run ended, but what it produced could not be stored. Run it again.",
)


class RunExecutor:
    """Claim, execute in the sandbox, record. Safe to call twice for one run: it runs once."""

    def __init__(self, runs: RunRecords, sandbox: Sandbox, *, worker: str | None = None) -> None:
        self.runs = runs
        self.sandbox = sandbox
        self.worker = worker or worker_id()
        self._choosing = threading.Lock()
        self.stops = StopWatch(runs)

    def execute(self, run_id: str) -> None:
        job = self.runs.start(run_id, worker=self.worker)
        if job is not None:
            self.record(run_id, self._outcome(run_id, job))

    def execute_next(self, among: Collection[str] | None = None) -> str | None:
        """Claim and execute the next run in fair order (``bot.services.fairness``), among
        ``among`` when given; its id, or None when there was nothing queued to take."""
        step = self.step(among)
        if step is None:
            return None
        self.record(*step)
        return step[0]

    def step(
        self, among: Collection[str] | None, *, ended: tuple[str, RunOutcome] | None = None
    ) -> tuple[str, RunOutcome] | None:
        """Record ``ended`` (a run and its outcome) and claim the next run in fair order (among
        ``among`` when given) in one transaction, then execute that run: its id and outcome,
        for the next step to record; None when there was nothing to take (``ended`` is
        recorded all the same)."""
        # Choosing and claiming is one step per process: threads that chose together would
        # all try the same run first, and every failed claim is a write (SQLite serialises).
        with self._choosing:
            claimed = self._claim(among, ended)
        if claimed is None:
            return None
        return claimed[0], self._outcome(*claimed)

    def _claim(
        self, among: Collection[str] | None, ended: tuple[str, RunOutcome] | None
    ) -> tuple[str, RunJob] | None:
        # One run to choose from needs no order (its claim finds out if it is still queued).
        if among is not None and len(among) == 1:
            order: Iterator[str] = iter(list(among))
        else:
            order = self.runs.fair_queue(among=among)
            # The order's first read is done here, not while the claim holds the write lock.
            order = itertools.chain(itertools.islice(order, 1), order)
        if ended is not None:
            try:
                taken = self.runs.finish_then_start(*ended, candidates=order, worker=self.worker)
            except Exception:
                logger.exception("the outcome of run %s could not be stored", ended[0])
                self.runs.finish(ended[0], UNSTORABLE)
                order = self.runs.fair_queue(among=among)  # claimed nothing: choose again
            else:
                if taken is None:
                    return None
                if taken[1] is not None:
                    return taken[0], taken[1]
                # That one ended at once (its code cannot run here): the next, as below.
        for run_id in order:
            job = self.runs.start(run_id, worker=self.worker)
            if job is not None:
                return run_id, job
        return None

    def _outcome(self, run_id: str, job: RunJob) -> RunOutcome:
        try:
            with self.stops.watching(run_id, stopped=job.stop_requested) as stop:
                return self._sandboxed(job, stop)
        except Exception as exc:
            logger.exception("run %s could not be executed", run_id)
            return RunOutcome(
                status=RunStatus.FAILED,
                error_type="SandboxError",
                error_message=f"The sandbox could not run this: {exc}",
            )

    def record(self, run_id: str, outcome: RunOutcome) -> None:
        """Record a run's outcome (one that ``step`` returned, when no next step will)."""
        try:
            self.runs.finish(run_id, outcome)
        except Exception:
            # Whatever the run produced, it reaches a final state: record that its outcome
            # could not be kept (a database still down raises here; the sweeper fails it later).
            logger.exception("the outcome of run %s could not be stored", run_id)
            self.runs.finish(run_id, UNSTORABLE)

    def _sandboxed(self, job: RunJob, stop: StopSwitch) -> RunOutcome:
        # The input bytes go straight into the run's own directory (no file of ours between).
        result = self.sandbox.run(
            code=job.code,
            input_path=None,
            input_data=job.input_data,
            input_name=job.input_name,
            stop=stop,
        )
        return outcome_of(result)


class SandboxHolder:
    """One sandbox per process, started on first use (a terminal command that only creates a
    task starts it when the first checks run) and shared by runs and checks."""

    def __init__(self, settings: Settings, *, sandbox: Sandbox | None = None) -> None:
        self._settings = settings
        self._sandbox = sandbox
        self._started = False
        self._lock = threading.Lock()

    def get(self) -> Sandbox:
        with self._lock:
            if self._sandbox is None:
                self._sandbox = build_sandbox(self._settings)
            if not self._started:
                self._sandbox.start()
                self._started = True
            return self._sandbox

    def close(self) -> None:
        with self._lock:
            if self._sandbox is not None and self._started:
                self._sandbox.close()
            self._started = False


def check_execute(holder: SandboxHolder) -> Execute:
    """Runs a generator-style module (the checks' harness) in the sandbox."""

    def execute(code: str) -> Execution:
        result = holder.get().run(code=code, input_path=None)
        return Execution(
            status=RunStatus(result.status),
            result=result.result,
            error_type=result.error_type,
            error_message=result.error_message,
            killed_reason=result.killed_reason,
            cpu_seconds=result.cpu_seconds,
        )

    return execute
