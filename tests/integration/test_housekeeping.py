"""Deleting tasks, and generations whose process died, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import func, select

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import NotAllowed, NotFound, NotReady
from bot.services.housekeeping import ABANDONED, INTERRUPTED, generation_deadline
from storage import migrate
from storage.db import make_engine
from storage.kinds import RunStatus
from storage.models import Run, RunFile, RunInput, TaskVersion
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import COUNT_LINES, answer_json


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    settings = Settings(database_url=db_url, openai_timeout=10, openai_max_retries=1)
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    built = build_services(settings, engine=engine, generator=FakeCodeGenerator())
    yield built
    built.close()


def _count(services: Services, model: type) -> int:
    with services.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def _make(services: Services) -> str:
    model = services.generator
    assert isinstance(model, FakeCodeGenerator)
    model.queue(answer_json(code=COUNT_LINES))
    detail = services.tasks.create(description="count lines", requested_by="U1", source="cli")
    return detail.task.id


def _finish(services: Services, run_id: str) -> None:
    with services.uow() as uow:
        run = uow.runs.get(run_id)
        assert run is not None
        run.status = RunStatus.SUCCEEDED.value
        uow.runs.add_file(RunFile(run_id=run_id, name="out.txt", size=2, content=b"ok"))
        uow.commit()


def test_delete_removes_the_task_its_versions_runs_inputs_and_files(services: Services) -> None:
    task_id, other = _make(services), _make(services)
    run = services.runs.request(task_id, requested_by="U1", input_data=b"a\n", input_name="a.txt")
    _finish(services, run.id)
    services.runs.request(other, requested_by="U1", input_data=b"b\n", input_name="b.txt")
    assert (_count(services, TaskVersion), _count(services, Run), _count(services, RunInput)) == (
        2,
        2,
        2,
    )

    gone = services.housekeeping.delete(task_id[:8])
    assert gone.id == task_id
    with pytest.raises(NotFound):
        services.tasks.get(task_id)
    assert (_count(services, TaskVersion), _count(services, Run), _count(services, RunInput)) == (
        1,
        1,
        1,
    )
    assert _count(services, RunFile) == 0
    assert services.tasks.get(other).id == other  # the other task is untouched


def test_delete_refuses_while_a_run_is_queued_and_refuses_other_people(
    services: Services,
) -> None:
    task_id = _make(services)
    run = services.runs.request(task_id, requested_by="U1", input_data=b"a\n", input_name="a.txt")
    with pytest.raises(NotReady, match="queued or running"):
        services.housekeeping.delete(task_id)
    _finish(services, run.id)
    with pytest.raises(NotAllowed, match="Only the person who created this task"):
        services.housekeeping.delete(task_id, requested_by="U2")
    services.housekeeping.delete(task_id, requested_by="U1")
    with pytest.raises(NotFound):
        services.tasks.get(task_id)


def test_an_interrupted_create_ends_failed_and_says_so(services: Services) -> None:
    task = services.tasks.start(description="count lines", requested_by="cli", source="cli")
    services.housekeeping.interrupted(task.id)
    failed = services.tasks.get(task.id)
    assert (failed.state, failed.state_detail) == ("failed", INTERRUPTED)
    with pytest.raises(NotReady, match="interrupted"):
        services.tasks.show(task.id)


def test_a_generation_whose_process_died_is_failed_once_past_the_deadline(
    services: Services,
) -> None:
    deadline = services.housekeeping.deadline
    assert deadline == generation_deadline(
        model_timeout=10, max_retries=1, rounds=3, checks_seconds=30
    )
    with freeze_time("2026-01-01 12:00:00"):
        task = services.tasks.start(description="count lines", requested_by="U1", source="cli")
    with freeze_time("2026-01-01 12:00:00") as clock:
        clock.tick(deadline - timedelta(seconds=1))
        assert services.housekeeping.fail_abandoned() == 0
        assert services.tasks.get(task.id).state == "generating"
        clock.tick(timedelta(seconds=2))
        assert services.housekeeping.fail_abandoned() == 1
    failed = services.tasks.get(task.id)
    assert (failed.state, failed.state_detail) == ("failed", ABANDONED)
    with pytest.raises(NotReady, match="create it again"):
        services.tasks.show(task.id)
