"""Any OpenAI-compatible model, loose or strict: real HTTP fakes, the real openai client, the real
sandbox for checks and runs. Each case creates a task that works, within at most one extra
request per fallback, and the requests are counted on the version."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.composition import Services, build_services
from bot.config import Settings
from storage import migrate
from storage.db import make_engine
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer

LINES = (
    "def {name}():\n"
    "    with open('sample.txt', 'w') as f:\n"
    "        f.write('a\\nb\\n')\n"
    "    assert run('sample.txt') == {{'lines': 2}}\n"
)

Make = Callable[..., tuple[Services, FakeOpenAIServer]]


@pytest.fixture
def make(tmp_path: Path) -> Iterator[Make]:
    built: list[tuple[Services, FakeOpenAIServer]] = []

    def factory(
        *, rejects: tuple[str, ...] = (), style: str = "openai", first: str = "json_schema"
    ) -> tuple[Services, FakeOpenAIServer]:
        server = FakeOpenAIServer(rejects=rejects, reject_style=style).start()
        url = f"sqlite:///{tmp_path / f'{uuid.uuid4().hex}.db'}"
        engine = make_engine(url)
        migrate.upgrade(engine)
        settings = Settings(
            database_url=url,
            openai_base_url=server.base_url,
            openai_api_key="sk-test",
            # What a server accepts is remembered per base URL and model: a fresh model name
            # keeps one test's lesson from another that reuses a port.
            openai_model=f"local-{uuid.uuid4().hex[:8]}",
            openai_timeout=5,
            openai_max_retries=0,
            openai_response_format=first,
            sandbox_wall_seconds=5,
            sandbox_cpu_seconds=5,
        )
        services = build_services(settings, engine=engine, runner="local")
        built.append((services, server))
        return services, server

    yield factory
    for services, server in built:
        services.close()
        server.stop()


def works(services: Services, task_id: str) -> None:
    """The task's current version runs in the sandbox and counts three lines."""
    run = services.runs.request(
        task_id, requested_by="U1", input_data=b"one\ntwo\nthree\n", submit=False
    )
    assert services.executor is not None
    services.executor.execute(run.id)
    done = services.runs.get(run.id)
    assert done.status == "succeeded", (done.error_type, done.error_message)
    assert json.loads(done.result or b"null") == {"lines": 3}


def create(services: Services) -> str:
    detail = services.tasks.create(
        description="count the lines of the input file", requested_by="U1", source="cli"
    )
    assert detail.task.state == "ready" and detail.task.current_version == 1
    return detail.task.id


def formats(server: FakeOpenAIServer) -> list[str | None]:
    return [(r.get("response_format") or {}).get("type") for r in server.requests]


@pytest.mark.parametrize(
    "checks",
    [
        [{"name": "probe_task", "code": LINES.format(name="probe_task")}],
        [{"name": "Counts two lines", "code": LINES.format(name="check_counts_two_lines")}],
        [
            {
                "name": "check_counts",
                "code": "    " + LINES.format(name="test_counts").replace("\n", "\n    "),
            }
        ],
        [LINES.format(name="test_two_lines")],
        {"check_two": LINES.format(name="check_two")},
    ],
    ids=["probe_task", "prose-name", "indented-test_", "bare-string", "mapping"],
)
def test_a_loose_answer_with_misnamed_checks_is_normalised_in_one_request(
    make: Make, checks: object
) -> None:
    services, server = make()
    server.reply_code(COUNT_LINES, checks=checks)  # type: ignore[arg-type]
    task_id = create(services)
    assert len(server.requests) == 1
    version = services.tasks.show(task_id).version
    assert version.model_requests == 1
    assert version.check_summary == "1 check passed"
    assert version.checks[0].name.startswith("check_")
    works(services, task_id)


def test_an_answer_without_checks_is_stored_unchecked_and_works(make: Make) -> None:
    services, server = make()
    server.reply_code(COUNT_LINES, checks=[])
    task_id = create(services)
    assert len(server.requests) == 1
    version = services.tasks.show(task_id).version
    assert version.state == "ready" and version.checks == ()
    assert version.check_summary == "unchecked: the model wrote no usable checks"
    works(services, task_id)


def test_malformed_checks_are_dropped_and_the_good_ones_kept(make: Make) -> None:
    services, server = make()
    server.reply_code(
        COUNT_LINES,
        checks=[
            {"name": "check_broken", "code": "def check_broken(:\n    pass\n"},
            {"name": "check_net", "code": "import requests\n\ndef check_net():\n    pass\n"},
            {"name": "check_lines", "code": LINES.format(name="check_lines")},
        ],
    )
    task_id = create(services)
    assert len(server.requests) == 1
    version = services.tasks.show(task_id).version
    assert [c.name for c in version.checks] == ["check_lines"]
    assert version.check_summary == "1 check passed"


@pytest.mark.parametrize("style", ["openai", "vllm"])
def test_a_server_that_rejects_json_schema_falls_back_once(make: Make, style: str) -> None:
    services, server = make(rejects=("json_schema",), style=style)
    server.reply_code(
        COUNT_LINES, checks=[{"name": "check_two", "code": LINES.format(name="check_two")}]
    )
    task_id = create(services)
    assert formats(server) == ["json_schema", None]  # one extra request
    assert services.tasks.show(task_id).version.model_requests == 2
    instructions = [m["content"] for m in server.requests[1]["messages"] if m["role"] == "system"]
    assert any('"checks"' in text and "JSON schema" in text for text in instructions)
    works(services, task_id)
    server.reply_code(COUNT_LINES)
    second = create(services)  # remembered: no extra request the second time
    assert formats(server)[2:] == [None]
    assert services.tasks.show(second).version.model_requests == 1


@pytest.mark.parametrize("metadata_first", [False, True], ids=["code-first", "metadata-first"])
def test_a_fenced_markdown_answer_creates_a_working_task(make: Make, metadata_first: bool) -> None:
    services, server = make()
    server.reply_markdown(
        COUNT_LINES, checks=LINES.format(name="check_two_lines"), metadata_first=metadata_first
    )
    task_id = create(services)
    assert len(server.requests) == 1
    detail = services.tasks.show(task_id)
    assert detail.task.name == "count_lines" and detail.version.code == COUNT_LINES
    assert detail.version.check_summary == "1 check passed"
    works(services, task_id)


def test_a_markdown_module_with_its_checks_inline_has_them_moved_out(make: Make) -> None:
    services, server = make()
    server.reply(
        "Sure! Here it is:\n\n```python\n"
        + COUNT_LINES
        + "\n\n"
        + LINES.format(name="check_two")
        + "```\n"
    )
    task_id = create(services)
    version = services.tasks.show(task_id).version
    assert version.code.strip() == COUNT_LINES.strip()
    assert [c.name for c in version.checks] == ["check_two"]
    assert version.check_summary == "1 check passed"
    assert version.metadata["name"] == "task"  # no metadata given: a plain default name
    works(services, task_id)


def test_a_server_without_response_format_goes_straight_to_text(make: Make) -> None:
    """'Unrecognized request argument supplied: response_format': JSON mode would fail the same
    way, so the next request sends none (one extra request, not two)."""
    services, server = make(rejects=("json_schema", "json_object"), style="unknown_param")
    server.reply_markdown(COUNT_LINES, checks=LINES.format(name="check_two"))
    task_id = create(services)
    assert formats(server) == ["json_schema", None]
    assert "response_format" not in server.requests[1]
    assert services.tasks.show(task_id).version.model_requests == 2
    works(services, task_id)


def test_a_server_that_rejects_json_object_too_ends_on_plain_text(make: Make) -> None:
    """Rejected by name without naming what it takes: straight to plain text, one extra request
    the first time only (never a second one for JSON mode)."""
    services, server = make(rejects=("json_schema", "json_object"))
    server.reply_markdown(COUNT_LINES, checks=LINES.format(name="check_two"))
    task_id = create(services)
    assert formats(server) == ["json_schema", None]
    assert services.tasks.show(task_id).version.model_requests == 2
    works(services, task_id)
    server.reply_markdown(COUNT_LINES)
    create(services)
    assert formats(server)[2:] == [None]


def test_a_server_that_refuses_the_schema_itself_gets_json_mode(make: Make) -> None:
    """The server takes structured output but not this schema: JSON mode, one extra request."""
    services, server = make(rejects=("json_schema",), style="bad_schema")
    server.reply_code(COUNT_LINES, checks=[LINES.format(name="check_two")])
    task_id = create(services)
    assert formats(server) == ["json_schema", "json_object"]
    works(services, task_id)


def test_lm_studio_listing_what_it_accepts_is_followed(make: Make) -> None:
    services, server = make(rejects=("json_object",), style="lmstudio", first="json_object")
    server.reply_code(COUNT_LINES, checks=[LINES.format(name="check_two")])
    task_id = create(services)
    assert formats(server) == ["json_object", None]
    works(services, task_id)


def test_a_real_error_is_not_mistaken_for_an_unsupported_format(make: Make) -> None:
    services, server = make()
    server.fail(400, message="This model's maximum context length is 8192 tokens.")
    with pytest.raises(Exception, match="answered with an error \\(400\\)"):
        create(services)
    assert formats(server) == ["json_schema"]


def test_a_server_that_reports_no_usage_still_works_and_says_so_once(
    make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    services, server = make()
    server.usage = False
    for _ in range(2):
        server.reply_code(COUNT_LINES, checks=[])
        task_id = create(services)
    version = services.tasks.show(task_id).version
    assert (version.input_tokens, version.output_tokens, version.model_requests) == (0, 0, 1)
    warned = [r for r in caplog.records if "reports no token usage" in r.getMessage()]
    assert len(warned) == 1
