"""What a user can reach from where: the tasks of their Home tab and of the message shortcut's
picker, and their recent runs. The rule is ``check_task_access``: a task is reachable from its
own channel (for its members) and, from anywhere, by its creator."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.services.access import check_task_access
from bot.services.errors import ServiceError
from bot.services.views import TaskSummary, TaskView

if TYPE_CHECKING:  # the rule (``reachable``) and the Home tab's types are read without the ORM
    from bot.services.runs import RunView
    from storage.uow import UnitOfWorkFactory


@dataclass(frozen=True)
class RecentRun:
    run: RunView
    task: TaskView


@dataclass(frozen=True)
class Reach:
    own: tuple[TaskSummary, ...]  # tasks the user created
    channel: tuple[TaskSummary, ...]  # other tasks in channels the user is in
    runs: tuple[RecentRun, ...]  # the user's recent runs of those tasks


def reachable(task: TaskView, *, team_id: str, user_id: str, channels: Collection[str]) -> bool:
    """Whether ``user_id``, a member of ``channels``, could run ``task`` with ``/task run``."""
    where = task.channel_id if task.channel_id in channels else ""
    try:
        check_task_access(task, team_id=team_id, channel_id=where or "", user_id=user_id)
    except ServiceError:
        return False
    return True


class ReachService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def tasks(
        self,
        *,
        team_id: str,
        user_id: str,
        channels: Sequence[str],
        search: str = "",
        limit: int = 25,
    ) -> list[TaskView]:
        """The tasks ``user_id`` may run from one of ``channels`` (or as their creator)."""
        with self._uow() as uow:
            rows = uow.tasks.reachable(
                team_id=team_id, user_id=user_id, channels=channels, search=search, limit=limit
            )
            views = [TaskView.of(t) for t in rows]
        return [
            t for t in views if reachable(t, team_id=team_id, user_id=user_id, channels=channels)
        ]

    def home(self, *, team_id: str, user_id: str, channels: Sequence[str]) -> Reach:
        from bot.services.runs import RunView

        tasks = self.tasks(team_id=team_id, user_id=user_id, channels=channels, limit=40)
        with self._uow() as uow:
            last = uow.runs.latest_for_tasks([t.id for t in tasks])
            summaries = [TaskSummary.of(t, last.get(t.id)) for t in tasks]
            by_id = {t.id: t for t in tasks}
            runs = tuple(
                RecentRun(RunView.of(r), by_id[r.task_id])
                for r in uow.runs.recent_by(user_id, task_ids=list(by_id), limit=8)
            )
        own = tuple(s for s in summaries if s.task.creator == user_id)
        others = tuple(s for s in summaries if s.task.creator != user_id)
        return Reach(own=own[:15], channel=others[:15], runs=runs)
