"""Versions prove themselves: their checks run in the real sandbox before they become current."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import ChecksFailed
from bot.services.views import ReplacedCheck
from storage import migrate
from storage.db import make_engine
from storage.kinds import VersionState
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

COUNT = "def run(input_path):\n    with open(input_path) as f:\n        return {'lines': len(f.read().splitlines())}\n"
OFF_BY_ONE = "def run(input_path):\n    with open(input_path) as f:\n        return {'lines': len(f.read().splitlines()) + 1}\n"
WORDS = "def run(input_path):\n    with open(input_path) as f:\n        text = f.read()\n    return {'lines': len(text.splitlines()) + 1, 'words': len(text.split())}\n"
WORDS_FIXED = "def run(input_path):\n    with open(input_path) as f:\n        text = f.read()\n    return {'lines': len(text.splitlines()), 'words': len(text.split())}\n"

LINES_CHECK = {
    "name": "check_counts_lines",
    "code": "def check_counts_lines():\n    with open('sample.txt', 'w') as f:\n        f.write('a\\nb\\n')\n    assert run('sample.txt')['lines'] == 2, run('sample.txt')\n",
}
WORDS_CHECK = {
    "name": "check_counts_words",
    "code": "def check_counts_words():\n    with open('w.txt', 'w') as f:\n        f.write('one two\\nthree\\n')\n    assert run('w.txt')['words'] == 3\n",
}
HANGS = {"name": "check_hangs", "code": "import time\n\ndef check_hangs():\n    time.sleep(60)\n"}


@pytest.fixture
def services(tmp_path: Path) -> Iterator[Services]:
    url = f"sqlite:///{tmp_path / 'checks.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    settings = Settings(database_url=url, sandbox_wall_seconds=3, sandbox_cpu_seconds=3)
    built = build_services(settings, engine=engine, generator=FakeCodeGenerator())
    yield built
    built.close()


def model(services: Services) -> FakeCodeGenerator:
    assert isinstance(services.generator, FakeCodeGenerator)
    return services.generator


def test_a_version_whose_checks_pass_becomes_current(services: Services) -> None:
    model(services).queue(answer_json(code=COUNT, checks=[LINES_CHECK]))
    detail = services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert detail.task.current_version == 1 and detail.version.state is VersionState.READY
    assert detail.version.check_summary == "1 check passed"
    assert detail.version.checks[0].name == "check_counts_lines"
    assert detail.version.check_seconds is not None and detail.version.check_seconds > 0
    assert "check_<what>()" in model(services).prompts[0][0].content


def test_failing_checks_go_back_to_the_model_and_a_fix_is_made_current(services: Services) -> None:
    model(services).queue(
        answer_json(code=OFF_BY_ONE, checks=[LINES_CHECK]),
        answer_json(code=COUNT, checks=[LINES_CHECK]),
    )
    detail = services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert detail.version.model_requests == 2 and detail.task.current_version == 1
    repair = model(services).prompts[1][-1].content
    assert "these checks failed: check_counts_lines: AssertionError" in repair
    assert "{'lines': 3}" in repair  # the check's own message reaches the model
    assert detail.version.code == COUNT


def test_a_version_that_never_passes_is_kept_as_a_draft_never_current(services: Services) -> None:
    for _ in range(3):
        model(services).queue(answer_json(code=OFF_BY_ONE, checks=[LINES_CHECK]))
    with pytest.raises(ChecksFailed, match="v1 was kept as a draft") as info:
        services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert "check_counts_lines" in str(info.value) and info.value.version == 1
    assert len(model(services).prompts) == 3
    (summary,) = services.tasks.list()
    assert summary.task.current_version is None and summary.task.state == "failed"
    draft = services.tasks.show(summary.task.id, version=1).version
    assert (
        draft.state is VersionState.DRAFT
        and draft.check_summary == "1 of 1 checks failed: check_counts_lines"
    )
    with pytest.raises(Exception, match="no working version"):
        services.tasks.show(summary.task.id)


def test_a_refinement_that_breaks_an_earlier_check_is_repaired(services: Services) -> None:
    model(services).queue(answer_json(code=COUNT, checks=[LINES_CHECK]))
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    # The model forgets the earlier check and breaks line counting; the guard still runs it.
    model(services).queue(
        answer_json(code=WORDS, checks=[WORDS_CHECK], change_summary="Counts words too."),
        answer_json(code=WORDS_FIXED, checks=[WORDS_CHECK], change_summary="Counts words too."),
    )
    result = services.tasks.refine(task.id, feedback="also count words", requested_by="U1")
    prompt = model(services).prompts[1][1].content
    assert "check_counts_lines" in prompt and "replaced_checks" in prompt
    assert "check_counts_lines: AssertionError" in model(services).prompts[2][-1].content
    assert result.version.number == 2 and result.version.code == WORDS_FIXED
    assert {c.name for c in result.version.checks} == {"check_counts_lines", "check_counts_words"}
    assert result.version.check_summary == "2 checks passed"


def test_a_refinement_that_keeps_breaking_a_check_is_refused(services: Services) -> None:
    model(services).queue(answer_json(code=COUNT, checks=[LINES_CHECK]))
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    for _ in range(3):
        model(services).queue(answer_json(code=WORDS, checks=[WORDS_CHECK]))
    with pytest.raises(ChecksFailed, match="v2 was kept as a draft"):
        services.tasks.refine(task.id, feedback="also count words", requested_by="U1")
    after = services.tasks.get(task.id)
    assert after.current_version == 1 and after.state == "ready"
    assert services.tasks.show(task.id, version=2).version.state is VersionState.DRAFT
    # the next refinement starts again from the current version and numbers after the draft
    model(services).queue(answer_json(code=WORDS_FIXED, checks=[WORDS_CHECK]))
    again = services.tasks.refine(task.id, feedback="also count words", requested_by="U1")
    assert again.version.number == 3 and again.previous.number == 1


def test_a_replaced_check_is_dropped_with_its_reason(services: Services) -> None:
    model(services).queue(answer_json(code=COUNT, checks=[LINES_CHECK]))
    task = services.tasks.create(description="count lines", requested_by="U1", source="cli").task
    model(services).queue(
        answer_json(
            code=OFF_BY_ONE,
            checks=[
                {
                    "name": "check_counts_plus_one",
                    "code": "def check_counts_plus_one():\n    open('s', 'w').write('a\\n')\n    assert run('s')['lines'] == 2\n",
                }
            ],
            replaced_checks=[{"name": "check_counts_lines", "reason": "the user wants one more"}],
        )
    )
    result = services.tasks.refine(task.id, feedback="add one to the count", requested_by="U1")
    assert [c.name for c in result.version.checks] == ["check_counts_plus_one"]
    assert result.version.replaced_checks == (
        ReplacedCheck("check_counts_lines", "the user wants one more"),
    )


def test_checks_run_under_the_sandbox_limits(services: Services) -> None:
    for _ in range(3):
        model(services).queue(answer_json(code=COUNT, checks=[LINES_CHECK, HANGS]))
    with pytest.raises(ChecksFailed, match="wall-time limit"):
        services.tasks.create(description="count lines", requested_by="U1", source="cli")


def test_an_answer_without_checks_is_kept_unchecked_in_one_request(services: Services) -> None:
    model(services).queue(answer_json(code=COUNT, checks=[]))
    detail = services.tasks.create(description="count lines", requested_by="U1", source="cli")
    assert len(model(services).prompts) == 1
    assert detail.task.current_version == 1 and detail.version.code == COUNT
    assert detail.version.check_summary.startswith("unchecked")
