"""Pinning a version: scheduled, workflow and MCP runs use it instead of the current one, so
a refinement in the thread does not change what runs unattended until someone pins again."""

from __future__ import annotations

from bot.services.errors import InvalidInput, NotFound
from bot.services.task_reads import TaskReads
from bot.services.views import TaskView
from storage.kinds import VersionState
from storage.uow import UnitOfWorkFactory


class PinService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow
        self._reads = TaskReads(uow=uow)

    def pin(self, ref: str, *, version: int, team_id: str | None = None) -> TaskView:
        """Pin ``version`` of the task ``ref``; only a working (not draft) version may be."""
        task = self._reads.get(ref, team_id=team_id)
        with self._uow() as uow:
            row = uow.tasks.version(task.id, version)
            if row is None:
                latest = uow.tasks.latest_version_number(task.id)
                raise NotFound(f"Task {task.id[:8]} has no version {version} (latest: v{latest}).")
            if row.state != VersionState.READY:
                raise InvalidInput(
                    f"v{version} of task {task.id[:8]} is a draft (its checks failed): "
                    "pin a working version."
                )
            stored = uow.tasks.get(task.id)
            assert stored is not None
            stored.pinned_version = version
            uow.commit()
            return TaskView.of(stored)

    def unpin(self, ref: str, *, team_id: str | None = None) -> TaskView:
        task = self._reads.get(ref, team_id=team_id)
        with self._uow() as uow:
            stored = uow.tasks.get(task.id)
            if stored is None:
                raise NotFound(f"No task {task.id}.")
            stored.pinned_version = None
            uow.commit()
            return TaskView.of(stored)
