"""Reading tasks: by id or unique prefix, by Slack thread, a version, the list, an export."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.services.errors import AlreadyExists, AmbiguousId, InvalidInput, NotFound, NotReady
from bot.services.views import RunTarget, TaskDetail, TaskSummary, TaskView, VersionView
from storage.kinds import TaskState, TaskType
from storage.models import Task
from storage.uow import UnitOfWork, UnitOfWorkFactory

MIN_PREFIX = 6
_ID_CHARS = re.compile(r"^[0-9a-f-]+$")


class TaskReads:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def get(self, ref: str, *, team_id: str | None = None) -> TaskView:
        with self._uow() as uow:
            return TaskView.of(self._resolve(uow, ref, team_id=team_id))

    def by_thread(self, *, channel_id: str, thread_ts: str) -> TaskView | None:
        with self._uow() as uow:
            task = uow.tasks.by_thread(channel_id=channel_id, thread_ts=thread_ts)
            return None if task is None else TaskView.of(task)

    def run_target(
        self, ref: str, *, version: int | None = None, team_id: str | None = None
    ) -> RunTarget:
        """The task and version a run of ``ref`` would run, raising as ``show`` does. A full id
        is one Core query (every upload in a thread asks this); anything else reads as
        ``show``."""
        if len(ref) == 36:
            with self._uow() as uow:
                row = uow.tasks.run_target(ref, version=version)
            if (
                row is not None
                and row.number is not None
                and (team_id is None or row.team_id == team_id)
            ):
                return RunTarget(
                    task_id=row.id,
                    team_id=row.team_id,
                    channel_id=row.channel_id,
                    task_type=TaskType(row.task_type),
                    version_number=row.number,
                )
        detail = self.show(ref, version=version, team_id=team_id)  # its answer, or its error
        return RunTarget(
            task_id=detail.task.id,
            team_id=detail.task.team_id,
            channel_id=detail.task.channel_id,
            task_type=detail.task.task_type,
            version_number=detail.version.number,
        )

    def show(
        self, ref: str, *, version: int | None = None, team_id: str | None = None
    ) -> TaskDetail:
        with self._uow() as uow:
            task = self._resolve(uow, ref, team_id=team_id)
            number = version if version is not None else task.current_version
            if number is None:
                raise NotReady(self._not_ready_message(task))
            row = uow.tasks.version(task.id, number)
            if row is None:
                latest = uow.tasks.latest_version_number(task.id)
                raise NotFound(f"Task {task.id[:8]} has no version {number} (latest: v{latest}).")
            return TaskDetail(TaskView.of(task), VersionView.of(row))

    def versions(self, ref: str, *, team_id: str | None = None) -> list[VersionView]:
        with self._uow() as uow:
            task = self._resolve(uow, ref, team_id=team_id)
            return [VersionView.of(v) for v in uow.tasks.versions(task.id)]

    def list(
        self, *, team_id: str | None = None, channel_id: str | None = None, limit: int = 20
    ) -> Sequence[TaskSummary]:
        with self._uow() as uow:
            tasks = uow.tasks.recent(team_id=team_id, channel_id=channel_id, limit=limit)
            runs = uow.runs.latest_for_tasks([t.id for t in tasks])
            return [TaskSummary.of(TaskView.of(t), runs.get(t.id)) for t in tasks]

    def export(
        self,
        ref: str,
        *,
        version: int | None = None,
        directory: Path = Path("user_tasks"),
        team_id: str | None = None,
        overwrite: bool = False,
    ) -> Path:
        """Write the seed's layout: ``<directory>/<uuid>/function.py`` and ``metadata.json``.
        An earlier export of another version (or edited since) is kept unless ``overwrite``."""
        detail = self.show(ref, version=version, team_id=team_id)
        target = directory / detail.task.id
        existing = target / "function.py"
        if (
            not overwrite
            and existing.is_file()
            and existing.read_text(encoding="utf-8") != detail.version.code
        ):
            raise AlreadyExists(
                f"{target} already holds another version of this task (or an edited copy): "
                "give another --dir, or --force to replace it."
            )
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(target, 0o700)  # the user's code and request: readable by the app's user only
        for name in ("function.py", "metadata.json"):
            os.close(os.open(target / name, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))
            os.chmod(target / name, 0o600)
        (target / "function.py").write_text(detail.version.code, encoding="utf-8")
        metadata: dict[str, Any] = {
            "task_id": detail.task.id,
            "version": detail.version.number,
            "desired_action": detail.task.desired_action,
            **detail.version.metadata,
        }
        (target / "metadata.json").write_text(
            json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        return target

    @staticmethod
    def _get(uow: UnitOfWork, task_id: str) -> Task:
        task = uow.tasks.get(task_id)
        if task is None:
            raise NotFound(f"No task {task_id}.")
        return task

    @staticmethod
    def _not_ready_message(task: Task) -> str:
        if task.state == TaskState.FAILED.value:
            return f"Task {task.id[:8]} has no working version: {task.state_detail}"
        return f"Task {task.id[:8]} is still being generated."

    def _resolve(self, uow: UnitOfWork, ref: str, *, team_id: str | None) -> Task:
        prefix = ref.strip().lower()
        if len(prefix) < MIN_PREFIX:
            raise InvalidInput(
                f"Task ids need at least {MIN_PREFIX} characters (got {ref.strip()!r})."
            )
        if not _ID_CHARS.match(prefix):
            raise NotFound(f"No task with id {ref.strip()!r}.")
        if len(prefix) == 36:
            exact = uow.tasks.get(prefix)
            if exact is not None and (team_id is None or exact.team_id == team_id):
                return exact
        found = uow.tasks.by_prefix(prefix, team_id=team_id)
        if not found:
            raise NotFound(f"No task with id {ref.strip()!r}.")
        if len(found) > 1:
            ids = ", ".join(t.id[:12] for t in found[:3])
            raise AmbiguousId(
                f"{ref.strip()!r} matches several tasks ({ids}…): give more of the id."
            )
        return found[0]
