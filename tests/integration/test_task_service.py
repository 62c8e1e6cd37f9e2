"""The task service through the real openai client against a fake server on loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import (
    AlreadyExists,
    AmbiguousId,
    GenerationFailed,
    InvalidInput,
    ModelUnavailable,
    NotFound,
)
from storage import migrate
from storage.db import make_engine
from storage.kinds import RunStatus
from storage.models import Run, TaskVersion
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer, answer_json

V2 = COUNT_LINES.replace("sum(1 for _ in f)", "sum(1 for line in f if line.strip())")
FORBIDDEN = "import requests\n\ndef run(input_path):\n    return requests.get('x')\n"


@pytest.fixture
def services(db_url: str, openai_server: FakeOpenAIServer) -> Iterator[Services]:
    settings = Settings(
        database_url=db_url,
        openai_base_url=openai_server.base_url,
        openai_api_key="sk-test",
        openai_model="fake-model-1",
        openai_timeout=1.5,
        openai_max_retries=1,
        code_max_bytes=4000,
    )
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    built = build_services(settings, engine=engine)
    yield built
    built.close()


def stored_versions(services: Services) -> list[str]:
    """The code of every stored version."""
    with services.uow() as uow:
        return list(uow.session.scalars(select(TaskVersion.code)))


def test_create_sends_the_description_and_allowed_packages_and_stores_version_1(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES, prompt_tokens=321, completion_tokens=123)
    detail = services.tasks.create(
        description="count the lines of the input file", requested_by="U1", source="cli"
    )
    assert len(openai_server.requests) == 1
    sent = openai_server.requests[0]
    assert sent["model"] == "fake-model-1"
    assert sent["response_format"]["type"] == "json_schema"
    assert "code" in sent["response_format"]["json_schema"]["schema"]["properties"]
    assert "count the lines of the input file" in openai_server.user_texts(0)
    assert "numpy, pandas" in openai_server.all_text(0)
    assert openai_server.headers[0]["authorization"] == "Bearer sk-test"

    assert detail.version.number == 1 and detail.task.current_version == 1
    assert detail.task.state == "ready" and detail.task.name == "count_lines"
    assert detail.version.code == COUNT_LINES
    assert (detail.version.input_tokens, detail.version.output_tokens) == (321, 123)
    meta = detail.version.metadata
    assert meta["task_type"] == "passthrough" and meta["model"] == "fake-model-1"
    assert meta["dependencies"] == [] and meta["prompt_version"]
    assert meta["inputs"] == {"description": "a text file", "formats": ["txt"]}
    assert datetime.fromisoformat(meta["created_at"]).tzinfo is not None
    again = services.tasks.show(detail.task.id[:6])
    assert again.version.code == COUNT_LINES


def test_refine_sends_previous_code_feedback_and_last_run_error(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    with services.uow() as uow:
        uow.runs.insert(
            Run(
                id="run-1",
                task_id=task.id,
                version_number=1,
                requested_by="U1",
                status=RunStatus.FAILED.value,
                error_type="UnicodeDecodeError",
                error_message="'utf-8' codec can't decode byte 0xff",
                traceback_tail='File "task.py", line 2, in run',
            )
        )
        uow.commit()
    openai_server.reply_code(V2, change_summary="Skips empty lines and decodes leniently.")
    result = services.tasks.refine(
        task.id[:8], feedback="fix it, and skip empty lines", requested_by="U2"
    )
    asked = openai_server.user_texts(1)
    assert COUNT_LINES.strip() in asked
    assert "fix it, and skip empty lines" in asked
    assert "UnicodeDecodeError" in asked and "0xff" in asked
    assert '"name": "count_lines"' in asked  # the previous metadata
    assert result.version.number == 2 and result.previous.number == 1
    assert result.version.change_summary == "Skips empty lines and decodes leniently."
    assert result.version.requested_by == "U2" and result.version.request_kind == "refine"
    assert "-        return {'lines': sum(1 for _ in f)}" in result.diff
    assert "+        return {'lines': sum(1 for line in f if line.strip())}" in result.diff
    assert services.tasks.get(task.id).current_version == 2
    assert [v.number for v in services.tasks.versions(task.id)] == [1, 2]
    assert services.tasks.show(task.id, version=1).version.code == COUNT_LINES


@pytest.mark.parametrize(
    "bad",
    [
        answer_json(code="def run(input_path):\n    return (\n"),
        answer_json(code="def main(input_path):\n    return 1\n"),
        answer_json(code=FORBIDDEN),
        answer_json(code="def run(p):\n    return 1\n" + "# pad\n" * 1000),
        "{this is not json",
    ],
    ids=["syntax", "missing-run", "forbidden-import", "oversized", "malformed-json"],
)
def test_an_invalid_answer_is_repaired_and_never_stored(
    services: Services, openai_server: FakeOpenAIServer, bad: str
) -> None:
    openai_server.reply(bad)
    openai_server.reply_code(COUNT_LINES)
    detail = services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert len(openai_server.requests) == 2
    second = openai_server.requests[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": bad}
    assert "cannot be used" in second[-1]["content"]
    assert detail.version.model_requests == 2
    assert stored_versions(services) == [COUNT_LINES]


def test_still_invalid_after_two_repairs_fails_clearly_and_stores_nothing(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    for _ in range(3):
        openai_server.reply_code(FORBIDDEN)
    openai_server.reply_code(COUNT_LINES)  # must never be asked for
    with pytest.raises(GenerationFailed, match="requests"):
        services.tasks.create(description="fetch a web page", requested_by="U1", source="cli")
    assert len(openai_server.requests) == 3
    assert stored_versions(services) == []
    (summary,) = services.tasks.list()
    assert summary.task.state == "failed" and summary.task.current_version is None
    assert "repair rounds" in (summary.task.state_detail or "")


def test_a_refine_that_stays_invalid_keeps_the_current_version(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    for _ in range(3):
        openai_server.reply_code(FORBIDDEN)
    with pytest.raises(GenerationFailed):
        services.tasks.refine(task.id, feedback="use requests", requested_by="U1")
    after = services.tasks.get(task.id)
    assert after.current_version == 1 and after.state == "ready"
    assert len(stored_versions(services)) == 1


def test_429_is_retried_by_the_sdk(services: Services, openai_server: FakeOpenAIServer) -> None:
    openai_server.fail(429, message="slow down", headers={"retry-after": "0"})
    openai_server.reply_code(COUNT_LINES)
    detail = services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert len(openai_server.requests) == 2
    assert detail.version.code == COUNT_LINES


@pytest.mark.parametrize(("status", "needle"), [(500, r"error \(500\)"), (429, "rate limiting")])
def test_persistent_server_errors_end_with_model_unavailable(
    services: Services, openai_server: FakeOpenAIServer, status: int, needle: str
) -> None:
    for _ in range(2):
        openai_server.fail(status, headers={"retry-after": "0"})
    with pytest.raises(ModelUnavailable, match=needle):
        services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert len(openai_server.requests) == 2  # one try and the SDK's one retry
    assert stored_versions(services) == []


def test_a_stalled_model_times_out(services: Services, openai_server: FakeOpenAIServer) -> None:
    openai_server.stall(3.0, answer_json(code=COUNT_LINES))
    openai_server.stall(3.0, answer_json(code=COUNT_LINES))
    with pytest.raises(ModelUnavailable, match="did not answer in time"):
        services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert stored_versions(services) == []


def test_unreachable_model_server(db_url: str) -> None:
    settings = Settings(
        database_url=db_url,
        openai_base_url="http://127.0.0.1:9/v1",
        openai_max_retries=0,
        openai_timeout=2,
    )
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    services = build_services(settings, engine=engine)
    try:
        with pytest.raises(ModelUnavailable, match="unreachable"):
            services.tasks.create(description="count lines", requested_by="U1", source="cli")
    finally:
        services.close()


def test_ids_resolve_by_unique_prefix_of_six(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    assert services.tasks.get(task.id.upper()).id == task.id
    assert services.tasks.get(task.id[:6]).id == task.id
    with pytest.raises(InvalidInput, match="at least 6"):
        services.tasks.get(task.id[:5])
    with pytest.raises(NotFound):
        services.tasks.get("ffffff" if not task.id.startswith("ffffff") else "eeeeee")
    with pytest.raises(NotFound):
        services.tasks.get("nothex!")
    with pytest.raises(NotFound, match="no version 7"):
        services.tasks.show(task.id, version=7)


def test_ambiguous_prefix_is_refused(services: Services) -> None:
    with services.uow() as uow:
        from storage.models import Task

        for suffix in ("1", "2"):
            uow.tasks.add(
                Task(
                    id=f"abcdef0{suffix}-0000-4000-8000-000000000000",
                    creator="U",
                    desired_action="x",
                    task_type="passthrough",
                )
            )
        uow.commit()
    with pytest.raises(AmbiguousId, match="several tasks"):
        services.tasks.get("abcdef")
    assert services.tasks.get("abcdef01").id.startswith("abcdef01")


def test_export_writes_the_seed_layout(
    services: Services, openai_server: FakeOpenAIServer, tmp_path: Path
) -> None:
    openai_server.reply_code(COUNT_LINES)
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    openai_server.reply_code(V2)
    services.tasks.refine(task.id, feedback="skip empty lines", requested_by="U1")
    path = services.tasks.export(task.id[:8], version=1, directory=tmp_path / "user_tasks")
    assert path == tmp_path / "user_tasks" / task.id
    assert (path / "function.py").read_text() == COUNT_LINES
    meta = json.loads((path / "metadata.json").read_text())
    assert meta["task_id"] == task.id and meta["version"] == 1 and meta["name"] == "count_lines"
    assert meta["desired_action"] == "count lines" and meta["task_type"] == "passthrough"
    with pytest.raises(AlreadyExists, match="--force"):  # v1 is not silently replaced by v2
        services.tasks.export(task.id, directory=tmp_path / "user_tasks")
    assert (path / "function.py").read_text() == COUNT_LINES
    services.tasks.export(task.id, version=1, directory=tmp_path / "user_tasks")  # same: fine
    services.tasks.export(task.id, directory=tmp_path / "user_tasks", overwrite=True)
    assert (path / "function.py").read_text() == V2


def test_list_shows_recent_tasks_with_their_last_run(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    first = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    openai_server.reply_code(COUNT_LINES, name="second_task")
    services.tasks.create(description="count more", requested_by="U1", source="cli")
    with services.uow() as uow:
        uow.runs.insert(
            Run(
                id="r-ok",
                task_id=first.id,
                version_number=1,
                requested_by="U1",
                status="succeeded",
                queued_at=datetime.now(UTC),
            )
        )
        uow.commit()
    summaries = services.tasks.list()
    assert len(summaries) == 2
    by_id = {s.task.id: s for s in summaries}
    assert by_id[first.id].last_run_status == "succeeded"
    with services.uow() as uow:
        assert uow.session.scalar(select(func.count()).select_from(Run)) == 1


def test_bad_input_is_refused_before_the_model_is_asked(
    services: Services, openai_server: FakeOpenAIServer
) -> None:
    with pytest.raises(InvalidInput, match="Say what the task should do"):
        services.tasks.create(description="   ", requested_by="U1", source="cli")
    with pytest.raises(InvalidInput, match="Unknown task type"):
        services.tasks.create(description="x", task_type="cron", requested_by="U1", source="cli")
    assert openai_server.requests == []
