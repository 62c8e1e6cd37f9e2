"""Being liberal in what the model sends: answer shapes and server errors (pure, no IO)."""

from __future__ import annotations

import json

import pytest

from bot.services.checks import normalise_checks
from bot.services.codegen import fallback_mode
from bot.services.generation import parse_answer
from tests.fakes.openai_server import COUNT_LINES, answer_json, markdown_answer

CHECK = "def check_two():\n    assert run('x') is not None\n"


@pytest.mark.parametrize(
    "content",
    [
        answer_json(code=COUNT_LINES),
        "```json\n" + answer_json(code=COUNT_LINES) + "\n```",
        "Here you go:\n" + answer_json(code=COUNT_LINES) + "\nHope this helps!",
        "<think>The user wants lines {counted}.</think>\n" + answer_json(code=COUNT_LINES),
        answer_json(code="```python\n" + COUNT_LINES + "```"),
        markdown_answer(code=COUNT_LINES),
        markdown_answer(code=COUNT_LINES, metadata_first=True),
        "```python\n" + COUNT_LINES + "```",
    ],
    ids=[
        "json",
        "fenced-json",
        "prose",
        "think",
        "fenced-code-in-json",
        "md",
        "md-meta-first",
        "bare-python",
    ],
)
def test_every_shape_yields_the_module(content: str) -> None:
    data, error = parse_answer(content)
    assert error is None and data is not None
    assert data["code"].strip() == COUNT_LINES.strip()


def test_metadata_and_checks_come_from_their_own_blocks_in_any_order() -> None:
    content = markdown_answer(code=COUNT_LINES, checks=CHECK, metadata_first=True)
    data, _ = parse_answer(content)
    assert data is not None and data["name"] == "count_lines"
    checks, notes = normalise_checks(data["checks"], allowed_packages=())
    assert [c.name for c in checks] == ["check_two"] and notes == []


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ("", "empty"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"name": "x"}', "no `code` string"),
    ],
)
def test_unusable_answers_say_why(content: str, error: str) -> None:
    data, reason = parse_answer(content)
    assert data is None and reason is not None and error in reason


def test_checks_are_renamed_after_the_function_they_define() -> None:
    checks, notes = normalise_checks(
        [
            {"name": "probe", "code": "def probe_task():\n    assert True\n"},
            {"name": "", "code": "assert 1 + 1 == 2"},
            {"name": "check_x", "code": "def check_x(a):\n    pass\n"},
        ],
        allowed_packages=(),
    )
    assert [c.name for c in checks] == ["check_probe_task", "check_it"]
    assert "check_probe_task = probe_task" in checks[0].code
    assert notes == ["check_x: it defines no function that takes no arguments"]


def _openai(kind: str) -> str:
    return json.dumps(
        {
            "error": {
                "message": f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model.",
                "type": "invalid_request_error",
                "param": "response_format",
                "code": None,
            }
        }
    )


@pytest.mark.parametrize(
    ("current", "status", "text", "expected"),
    [
        ("json_schema", 400, _openai("json_schema"), "text"),
        ("json_object", 400, _openai("json_object"), "text"),
        ("json_schema", 400, "Unrecognized request argument supplied: response_format", "text"),
        (
            "json_object",
            400,
            "{\"error\": \"'response_format.type' must be 'json_schema' or 'text'\"}",
            "text",
        ),
        ("json_schema", 400, "This model's maximum context length is 8192 tokens", None),
        (
            "json_schema",
            400,
            "Invalid schema for response_format 'taskbot_code': bad",
            "json_object",
        ),
        (
            "json_schema",
            422,
            '{"detail": [{"loc": ["body", "response_format"], "msg": "Extra inputs are not permitted"}]}',
            "text",
        ),
        ("json_schema", 500, _openai("json_schema"), None),
        ("text", 400, "response_format is not supported", None),
    ],
)
def test_fallback_only_for_errors_about_the_response_format(
    current: str, status: int, text: str, expected: str | None
) -> None:
    assert fallback_mode(current, text, status=status) == expected  # type: ignore[arg-type]
