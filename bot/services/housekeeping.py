"""Deleting a task, and failing generations that nobody is working on any more.

A create stores its task ``generating`` before the model is asked. When the process doing the
asking dies (Ctrl-C, ``kill -9``, a crash), nothing would ever move the task on: this marks
such tasks failed once they are older than the longest a generation can legitimately take, so
nothing stays ``generating`` past the model's timeout.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, func, select, update

from bot.services.errors import NotAllowed, NotReady
from bot.services.tasks import TaskService
from bot.services.views import TaskView
from storage.kinds import RunStatus, TaskState
from storage.models import Run, Task
from storage.uow import UnitOfWorkFactory

INTERRUPTED = "Generation was interrupted before the code was written: create it again."
ABANDONED = "Generation stopped without an answer (its process ended): create it again."


def _now() -> datetime:
    return datetime.now(UTC)


def generation_deadline(
    *, model_timeout: float, max_retries: int, rounds: int, checks_seconds: float
) -> timedelta:
    """The longest one generation can take: every request of every round timing out after
    all its retries, plus the sandbox time of the checks, plus a minute of slack."""
    requests = (max_retries + 1) * rounds
    return timedelta(seconds=model_timeout * requests + checks_seconds * rounds + 60)


class TaskHousekeeping:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        tasks: TaskService,
        deadline: timedelta,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._uow = uow
        self._tasks = tasks
        self.deadline = deadline
        self._clock = clock

    def interrupted(self, task_id: str) -> None:
        """The create asking for ``task_id`` was interrupted: it ends failed at once."""
        with self._uow() as uow:
            uow.session.execute(
                update(Task)
                .where(Task.id == task_id, Task.state == TaskState.GENERATING.value)
                .values(
                    state=TaskState.FAILED.value, state_detail=INTERRUPTED, updated_at=self._clock()
                )
            )
            uow.commit()

    def fail_abandoned(self) -> int:
        """Tasks still ``generating`` past the deadline are marked failed; how many."""
        return len(self.fail_abandoned_tasks())

    def fail_abandoned_tasks(self) -> list[TaskView]:
        """Tasks still ``generating`` past the deadline, each marked failed by this call (a
        task another process failed first is not among them), so whoever shows them (the
        Slack root message) shows each once."""
        now = self._clock()
        failed: list[TaskView] = []
        with self._uow() as uow:
            stale = uow.session.scalars(
                select(Task.id).where(
                    Task.state == TaskState.GENERATING.value,
                    Task.updated_at < now - self.deadline,
                )
            ).all()
        for task_id in stale:
            with self._uow() as uow:
                result = uow.session.execute(
                    update(Task)
                    .where(Task.id == task_id, Task.state == TaskState.GENERATING.value)
                    .values(state=TaskState.FAILED.value, state_detail=ABANDONED, updated_at=now)
                )
                uow.commit()
                if getattr(result, "rowcount", 0):
                    row = uow.session.get(Task, task_id)
                    if row is not None:
                        failed.append(TaskView.of(row))
        return failed

    def delete(
        self, ref: str, *, requested_by: str | None = None, team_id: str | None = None
    ) -> TaskView:
        """Delete a task with its versions, runs, inputs and output files. ``requested_by``
        (when given) must be its creator. Refused while a run of it is queued or running."""
        task = self._tasks.get(ref, team_id=team_id)
        if requested_by is not None and requested_by != task.creator:
            raise NotAllowed("Only the person who created this task can delete it.")
        if task.state == TaskState.GENERATING.value:
            self.fail_abandoned()
            if self._tasks.get(task.id).state == TaskState.GENERATING.value:
                raise NotReady(
                    f"Task {task.id[:8]} is being generated: delete it when that is done."
                )
        with self._uow() as uow:
            busy = uow.session.scalar(
                select(func.count())
                .select_from(Run)
                .where(
                    Run.task_id == task.id,
                    Run.status.in_((RunStatus.QUEUED.value, RunStatus.RUNNING.value)),
                )
            )
            if busy:
                raise NotReady(
                    f"Task {task.id[:8]} has {busy} run(s) queued or running: "
                    "wait for them to finish (or stop them), then delete it."
                )
            uow.session.execute(delete(Task).where(Task.id == task.id))
            uow.commit()
            uow.scrub()  # its code, inputs, results and files leave no copy in the WAL
        return task
