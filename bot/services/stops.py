"""Stopping runs: who may, and how the request reaches the worker that holds the run.

A stop is recorded in the database (``runs.stop_requested_by``) and announced on the run
signal (relayed to other processes where a relay is wired); the worker holding the run sees it
(``bot.worker.stopwatch``: woken by the signal, and reading the database every second as a
safety net for a process the signal does not reach) and kills the run's whole process tree,
which then ends ``killed`` with the reason ``stopped``. A run still queued is ended here."""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.services.errors import NotAllowed, NotFound
from bot.services.events import RunSignal
from bot.services.outcomes import RunOutcome
from bot.services.views import TaskView
from storage.kinds import RunStatus

if TYPE_CHECKING:  # the edges read STOPPED and StopResult without the ORM
    from bot.services.runs import RunRecords
    from storage.uow import UnitOfWorkFactory

logger = logging.getLogger(__name__)

STOPPED = "stopped"  # the killed_reason of a run someone stopped


@dataclass(frozen=True)
class StopResult:
    run_id: str
    task_id: str
    was: RunStatus  # queued or running when the stop was asked for


def may_stop(*, user_id: str, started_by: str, task_creator: str, admins: Collection[str]) -> bool:
    """The run's starter, the task's creator and an ADMIN_USERS member may stop it."""
    return bool(user_id) and user_id in {started_by, task_creator, *admins}


class StopService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        runs: RunRecords,
        signal: RunSignal,
        admins: Collection[str],
    ) -> None:
        self._uow = uow
        self._runs = runs
        self._signal = signal
        self._admins = frozenset(admins)

    def stop_run(
        self, run_id: str, *, by: str, team_id: str | None = None, operator: bool = False
    ) -> StopResult:
        """Ask for a run to be stopped; raises ``NotFound`` (also for another workspace's run,
        or one that already ended) or ``NotAllowed``. ``operator``: the caller holds the
        operator's credential (the API token), which may stop any run of ``team_id``."""
        with self._uow() as uow:
            run = uow.runs.get(run_id.strip())
            task = uow.tasks.get(run.task_id) if run is not None else None
            if run is None or task is None or (team_id is not None and task.team_id != team_id):
                raise NotFound(f"No run {run_id.strip()[:36]!r}.")
            if not operator and not may_stop(
                user_id=by,
                started_by=run.requested_by,
                task_creator=task.creator,
                admins=self._admins,
            ):
                raise NotAllowed(
                    f"Only <@{run.requested_by}> (who started it), <@{task.creator}> (who "
                    "created the task) or a Taskbot admin can stop this run."
                )
            status = RunStatus(run.status)
            if status.final:
                raise NotFound(f"Run `{run.id[:8]}` already ended: {status.value}.")
            uow.runs.request_stop(run.id, by=by)
            uow.commit()
            result = StopResult(run.id, run.task_id, status)
        if status is RunStatus.QUEUED:
            # Nobody holds it yet: end it here. A worker that claims it in between sees the
            # request and kills it at once; whichever ends it first records the outcome.
            self._runs.finish(run_id, stopped_outcome())
        else:
            self._signal.changed(result.run_id)
        logger.info("run %s: stop asked by %s (was %s)", result.run_id, by, status.value)
        return result

    def stop_task(self, task: TaskView, *, by: str) -> list[StopResult]:
        """Stop every queued or running run of ``task`` that ``by`` may stop."""
        with self._uow() as uow:
            ids = [r.id for r in uow.runs.active_for_task(task.id)]
        stopped: list[StopResult] = []
        refused: NotAllowed | None = None
        for run_id in ids:
            try:
                stopped.append(self.stop_run(run_id, by=by, team_id=task.team_id))
            except NotAllowed as exc:
                refused = exc
            except NotFound:
                continue  # ended meanwhile
        if not stopped and refused is not None:
            raise refused
        return stopped


def stopped_outcome() -> RunOutcome:
    return RunOutcome(status=RunStatus.KILLED, killed_reason=STOPPED)
