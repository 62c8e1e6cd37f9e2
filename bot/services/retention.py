"""How long users' data is kept: a periodic job removes what is due, and nothing else.

- a run's input: removed when the run ends, with its outcome (``RETAIN_INPUT_DAYS=0``, the
  default), or that many days after it ended;
- the files a run wrote under ``output/``: ``RETAIN_OUTPUT_DAYS`` after the run ended;
- a run's result: ``RETAIN_RESULT_DAYS``;
- a run's logs (stdout, stderr, traceback): ``RETAIN_LOG_DAYS``.

0 days keeps that kind forever. The run's record (status, times, sizes, hashes, error type)
stays, so history and usage add up. Every web process runs this job every minute (see
``bot.roles.web``): on one machine that is the one process; on many each deletes the same due
rows, which is idempotent. Each pass ends by checkpointing and truncating the SQLite WAL.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update

from storage.kinds import RunStatus
from storage.models import Run, RunFile, RunInput
from storage.uow import UnitOfWorkFactory

_ENDED = tuple(s.value for s in RunStatus if s not in (RunStatus.QUEUED, RunStatus.RUNNING))


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class RetentionPolicy:
    """Days each kind of a run's data is kept after the run ended (0: forever)."""

    input_days: float = 0.0
    output_days: float = 30.0
    result_days: float = 30.0
    log_days: float = 7.0


@dataclass(frozen=True)
class Removed:
    inputs: int = 0
    outputs: int = 0
    results: int = 0
    logs: int = 0

    @property
    def total(self) -> int:
        return self.inputs + self.outputs + self.results + self.logs


class Retention:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        policy: RetentionPolicy,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._uow = uow
        self.policy = policy
        self._clock = clock

    def apply(self) -> Removed:
        """Remove every piece of run data past its retention; how many of each."""
        now = self._clock()
        ended = Run.status.in_(_ENDED)
        with self._uow() as uow:
            session = uow.session
            # Inputs go when the run ends (0 days), or that many days after.
            inputs_due = select(Run.id).where(ended)
            if self.policy.input_days:
                inputs_due = inputs_due.where(
                    Run.finished_at < now - timedelta(days=self.policy.input_days)
                )
            inputs = session.execute(delete(RunInput).where(RunInput.run_id.in_(inputs_due)))
            outputs = results = logs = 0
            if self.policy.output_days:
                due = select(Run.id).where(
                    ended, Run.finished_at < now - timedelta(days=self.policy.output_days)
                )
                outputs = _count(session.execute(delete(RunFile).where(RunFile.run_id.in_(due))))
            if self.policy.result_days:
                cutoff = now - timedelta(days=self.policy.result_days)
                results = _count(
                    session.execute(
                        update(Run)
                        .where(ended, Run.finished_at < cutoff, Run.result.is_not(None))
                        .values(result=None, result_kind=None, result_truncated=False)
                    )
                )
            if self.policy.log_days:
                cutoff = now - timedelta(days=self.policy.log_days)
                kept = (
                    Run.stdout.is_not(None)
                    | Run.stderr.is_not(None)
                    | Run.traceback_tail.is_not(None)
                )
                logs = _count(
                    session.execute(
                        update(Run)
                        .where(ended, Run.finished_at < cutoff, kept)
                        .values(stdout=None, stderr=None, traceback_tail=None)
                    )
                )
            removed = Removed(_count(inputs), outputs, results, logs)
            uow.commit()
            uow.scrub()  # also catches up on a scrub that found the WAL busy
        return removed


def _count(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)
