"""Retention removes what is due and nothing else (frozen clock)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from freezegun import freeze_time
from sqlalchemy import select, update

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.outcomes import OutputFileView, RunOutcome
from bot.services.retention import Removed, Retention, RetentionPolicy
from storage import migrate
from storage.db import make_engine
from storage.kinds import RunStatus
from storage.models import Run, RunInput
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
CODE = "def run(input_path):\n    return 1\n"


@pytest.fixture
def services(db_url: str) -> Services:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    model = FakeCodeGenerator()
    model.queue(answer_json(code=CODE))
    return build_services(Settings(database_url=db_url), engine=engine, generator=model)


def _ended_run(services: Services, task_id: str, *, days_ago: float, keep_input: bool) -> str:
    run = services.runs.request(task_id, requested_by="U1", input_data=b"in", submit=False)
    services.runs.finish(
        run.id,
        RunOutcome(
            status=RunStatus.SUCCEEDED,
            result_kind="text",
            result=b"the result",
            stdout="out",
            stderr="err",
            files=(OutputFileView("chart.png", 3, b"png"),),
        ),
    )
    with services.uow() as uow:
        uow.session.execute(
            update(Run).where(Run.id == run.id).values(finished_at=NOW - timedelta(days=days_ago))
        )
        if keep_input:  # as with RETAIN_INPUT_DAYS > 0, the input outlived the run
            uow.session.add(RunInput(run_id=run.id, data=b"in"))
        uow.commit()
    return run.id


def _state(services: Services, run_id: str) -> tuple[bool, bool, bool, bool]:
    """(input kept, output files kept, result kept, logs kept)"""
    view = services.runs.get(run_id)
    with services.uow() as uow:
        has_input = uow.session.scalar(select(RunInput.run_id).where(RunInput.run_id == run_id))
    return (
        has_input is not None,
        bool(view.files),
        view.result is not None,
        view.stdout is not None and view.stderr is not None,
    )


def test_retention_removes_what_is_due_and_nothing_else(services: Services) -> None:
    task_id = services.tasks.create(
        description="d", task_type="passthrough", requested_by="U1", source="cli"
    ).task.id
    old = _ended_run(services, task_id, days_ago=40, keep_input=True)
    middle = _ended_run(services, task_id, days_ago=10, keep_input=True)
    recent = _ended_run(services, task_id, days_ago=1, keep_input=True)
    waiting = services.runs.request(task_id, requested_by="U1", input_data=b"in", submit=False)
    retention = Retention(
        uow=services.uow,
        policy=RetentionPolicy(input_days=5, output_days=30, result_days=20, log_days=7),
    )
    with freeze_time(NOW):
        removed = retention.apply()
    assert removed == Removed(inputs=2, outputs=1, results=1, logs=2)
    assert _state(services, old) == (False, False, False, False)
    assert _state(services, middle) == (False, True, True, False)
    assert _state(services, recent) == (True, True, True, True)
    assert _state(services, waiting.id)[0]  # a queued run keeps its input, whatever its age
    assert services.runs.get(waiting.id).status == "queued"
    with freeze_time(NOW):
        assert retention.apply() == Removed()  # nothing due twice
    with freeze_time(NOW + timedelta(days=5)):
        assert retention.apply() == Removed(inputs=1, logs=0)  # the recent run's input now
    # Every run's record stays: history and usage still add up.
    assert {services.runs.get(r).status for r in (old, middle, recent)} == {"succeeded"}


def test_by_default_an_input_goes_when_its_run_ends(services: Services) -> None:
    task_id = services.tasks.create(
        description="d", task_type="passthrough", requested_by="U1", source="cli"
    ).task.id
    run_id = _ended_run(services, task_id, days_ago=0, keep_input=False)
    assert _state(services, run_id) == (False, True, True, True)
