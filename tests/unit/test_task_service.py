"""The task service and the run service's requests on a fake unit of work (no IO): what is
stored, when it is committed, and what a bad request gets instead."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace, TracebackType
from typing import Any

import pytest

from bot.services.errors import AmbiguousId, InvalidInput, NotFound, NotReady
from bot.services.events import RunSignal
from bot.services.runs import ReplyTarget, RunService
from bot.services.tasks import TaskService
from bot.services.usage import Budgets, Prices, UsageService
from bot.services.views import Workspace
from storage.kinds import RunStatus, TaskState, TaskType
from storage.models import Run, Task, TaskVersion

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
CODE = "def run(input_path):\n    return 1\n"


class FakeTasks:
    def __init__(self) -> None:
        self.rows: dict[str, Task] = {}
        self.versions_of: dict[tuple[str, int], TaskVersion] = {}

    def add(self, task: Task) -> None:
        self.rows[task.id] = task

    def get(self, task_id: str) -> Task | None:
        return self.rows.get(task_id)

    def by_prefix(self, prefix: str, *, team_id: str | None = None, limit: int = 5) -> list[Task]:
        found = [
            t
            for t in self.rows.values()
            if t.id.startswith(prefix) and (team_id is None or t.team_id == team_id)
        ]
        return found[:limit]

    def version(self, task_id: str, number: int) -> TaskVersion | None:
        return self.versions_of.get((task_id, number))

    def latest_version_number(self, task_id: str) -> int:
        return max((n for t, n in self.versions_of if t == task_id), default=0)

    def run_target(self, task_id: str, *, version: int | None) -> SimpleNamespace | None:
        task = self.rows.get(task_id)
        if task is None:
            return None
        number = version if version is not None else task.current_version
        found = None if number is None else self.versions_of.get((task_id, number))
        return SimpleNamespace(
            id=task.id,
            team_id=task.team_id,
            channel_id=task.channel_id,
            task_type=task.task_type,
            number=None if found is None else found.number,
        )


class FakeRuns:
    def __init__(self) -> None:
        self.rows: dict[str, Run] = {}
        self.inputs: dict[str, bytes] = {}

    def insert(self, run: Run, *, input_data: bytes | None = None) -> None:
        self.rows[run.id] = run
        if input_data is not None:
            self.inputs[run.id] = input_data


class FakeUsage:
    def totals(self, **_: Any) -> tuple[int, float | None, float, int, int]:
        return 0, None, 0.0, 0, 0


class FakeUnitOfWork:
    """Holds what was committed; what a block added without committing is dropped."""

    def __init__(self) -> None:
        self.tasks, self.runs, self.usage = FakeTasks(), FakeRuns(), FakeUsage()
        self.commits = 0
        self._before: tuple[dict[str, Task], dict[str, Run]] | None = None

    def __call__(self) -> FakeUnitOfWork:
        return self

    def __enter__(self) -> FakeUnitOfWork:
        self._before = (dict(self.tasks.rows), dict(self.runs.rows))
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._before is not None:  # not committed: roll back
            self.tasks.rows, self.runs.rows = self._before
        self._before = None

    def commit(self) -> None:
        self.commits += 1
        self._before = None


def services() -> tuple[TaskService, RunService, FakeUnitOfWork, list[str]]:
    uow = FakeUnitOfWork()
    usage = UsageService(uow=uow, prices=Prices(), budgets=Budgets(), clock=lambda: NOW)  # type: ignore[arg-type]
    tasks = TaskService(uow=uow, generation=None, usage=usage, clock=lambda: NOW)  # type: ignore[arg-type]
    submitted: list[str] = []

    class Queue:
        def submit(self, run_id: str) -> None:
            submitted.append(run_id)

    runs = RunService(
        uow=uow,  # type: ignore[arg-type]
        tasks=tasks,
        queue=Queue(),
        packages=(),
        max_code_bytes=10_000,
        max_input_bytes=100,
        wall_seconds=5,
        signal=RunSignal(),
        clock=lambda: NOW,
        usage=usage,
    )
    return tasks, runs, uow, submitted


def ready_task(uow: FakeUnitOfWork, task_id: str, *, task_type: TaskType, team: str = "T1") -> None:
    uow.tasks.add(
        Task(
            id=task_id,
            team_id=team,
            creator="U1",
            source="cli",
            desired_action="one",
            task_type=task_type.value,
            state=TaskState.READY.value,
            current_version=1,
            created_at=NOW,
            updated_at=NOW,
        )
    )
    uow.tasks.versions_of[(task_id, 1)] = TaskVersion(
        task_id=task_id,
        number=1,
        code=CODE,
        meta={"name": "one"},
        request_kind="create",
        created_at=NOW,
    )


def test_a_new_task_is_stored_generating_and_committed_before_it_is_returned() -> None:
    tasks, _, uow, _ = services()
    view = tasks.start(
        description="  count the lines  ",
        requested_by="U1",
        source="slack",
        workspace=Workspace("T1"),
        channel_id="C1",
    )
    assert uow.commits == 1
    stored = uow.tasks.rows[view.id]
    assert stored.state == TaskState.GENERATING.value and stored.desired_action == "count the lines"
    assert view.task_type is TaskType.PASSTHROUGH and view.current_version is None
    with pytest.raises(NotReady, match="still being generated"):
        tasks.show(view.id)


@pytest.mark.parametrize(
    ("description", "task_type", "message"),
    [
        ("   ", "passthrough", "Say what the task should do"),
        ("x" * 4001, "passthrough", "over 4000 characters"),
        ("count", "transformer", "Unknown task type 'transformer'"),
    ],
)
def test_a_bad_request_stores_nothing(description: str, task_type: str, message: str) -> None:
    tasks, _, uow, _ = services()
    with pytest.raises(InvalidInput, match=message):
        tasks.start(description=description, task_type=task_type, requested_by="U1", source="cli")
    assert uow.tasks.rows == {} and uow.commits == 0


def test_tasks_are_found_by_a_unique_prefix_in_their_own_workspace() -> None:
    tasks, _, uow, _ = services()
    ready_task(uow, "abcdef01-0000-0000-0000-000000000001", task_type=TaskType.GENERATOR)
    ready_task(uow, "abcdef02-0000-0000-0000-000000000002", task_type=TaskType.GENERATOR)
    assert tasks.get("abcdef01").id.startswith("abcdef01")
    with pytest.raises(AmbiguousId, match="matches several tasks"):
        tasks.get("abcdef")
    with pytest.raises(InvalidInput, match="at least 6 characters"):
        tasks.get("abc")
    with pytest.raises(NotFound):
        tasks.get("abcdef01", team_id="T9")
    with pytest.raises(NotFound, match="has no version 3"):
        tasks.show("abcdef01", version=3)


def test_an_abandoned_task_says_why_it_has_no_version() -> None:
    tasks, _, uow, _ = services()
    view = tasks.start(description="count", requested_by="U1", source="cli")
    tasks.abandon(view.id, reason="the bot is not in the channel")
    assert uow.tasks.rows[view.id].state == TaskState.FAILED.value
    with pytest.raises(NotReady, match="the bot is not in the channel"):
        tasks.show(view.id)


def test_a_run_is_stored_queued_with_its_input_then_handed_to_the_queue() -> None:
    _, runs, uow, submitted = services()
    ready_task(uow, "feed0000-0000-0000-0000-000000000001", task_type=TaskType.PASSTHROUGH)
    reply = ReplyTarget("T1", None, "C1", "1.1")
    view = runs.request(
        "feed0000", requested_by="U2", input_data=b"a,b\n", input_name="../x.csv", reply=reply
    )
    stored = uow.runs.rows[view.id]
    assert stored.status == RunStatus.QUEUED.value and view.status is RunStatus.QUEUED
    assert stored.input_name == "x.csv" and uow.runs.inputs[view.id] == b"a,b\n"
    assert (stored.reply_channel, stored.reply_thread_ts) == ("C1", "1.1")
    assert submitted == [view.id]
    later = runs.request("feed0000", requested_by="U2", input_data=b"1", submit=False)
    assert submitted == [view.id] and uow.runs.rows[later.id].status == RunStatus.QUEUED.value


def test_a_run_by_full_id_runs_the_version_asked_for_in_the_workspace_asked_for() -> None:
    _, runs, uow, _ = services()
    task_id = "feed0000-0000-0000-0000-000000000001"
    ready_task(uow, task_id, task_type=TaskType.PASSTHROUGH)
    view = runs.request(task_id, requested_by="U2", input_data=b"1", version=1, team_id="T1")
    assert uow.runs.rows[view.id].task_id == task_id and view.version_number == 1
    with pytest.raises(NotFound, match="has no version 2"):
        runs.request(task_id, requested_by="U2", input_data=b"1", version=2)
    with pytest.raises(NotFound, match="No task with id"):
        runs.request(task_id, requested_by="U2", input_data=b"1", team_id="T9")
    uow.tasks.rows[task_id].current_version = None
    with pytest.raises(NotReady):
        runs.request(task_id, requested_by="U2", input_data=b"1")
    assert list(uow.runs.rows) == [view.id]


def test_a_run_that_cannot_work_is_refused_before_it_is_stored() -> None:
    _, runs, uow, submitted = services()
    ready_task(uow, "feed0000-0000-0000-0000-000000000001", task_type=TaskType.PASSTHROUGH)
    ready_task(uow, "beef0000-0000-0000-0000-000000000002", task_type=TaskType.GENERATOR)
    with pytest.raises(InvalidInput, match="needs an input file"):
        runs.request("feed0000", requested_by="U1")
    with pytest.raises(InvalidInput, match="takes no input file"):
        runs.request("beef0000", requested_by="U1", input_data=b"x")
    with pytest.raises(InvalidInput, match="too large"):
        runs.request("feed0000", requested_by="U1", input_data=b"x" * 101)
    assert uow.runs.rows == {} and submitted == []
