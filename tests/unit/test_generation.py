from __future__ import annotations

import json

import pytest

from bot.services.errors import GenerationFailed, ModelUnavailable
from bot.services.generation import Generation, create_messages, parse_answer, snake_case
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import COUNT_LINES, answer_json

GOOD = answer_json(code=COUNT_LINES)


def generation(model: FakeCodeGenerator) -> Generation:
    return Generation(model, packages=("numpy", "pandas"), max_code_bytes=2000)


def messages() -> list:  # type: ignore[type-arg]
    return create_messages(description="count lines", task_type="passthrough", packages=("numpy",))


def test_happy_answer_takes_one_request() -> None:
    model = FakeCodeGenerator(GOOD)
    result = generation(model).run(messages())
    assert len(model.prompts) == 1
    assert result.code == COUNT_LINES
    assert result.model_requests == 1
    assert (result.input_tokens, result.output_tokens) == (10, 20)
    assert result.name == "count_lines"


@pytest.mark.parametrize(
    ("bad", "error_part"),
    [
        (answer_json(code="def run(p):\n  return (\n"), "SyntaxError at line"),
        (answer_json(code="def main(p):\n  return 1\n"), "run(input_path)"),
        (answer_json(code="import requests\ndef run(p):\n  return 1\n"), "requests"),
        (answer_json(code="def run(p):\n  return 1\n" + "#" * 3000), "over the limit"),
        ("{not json", "not valid JSON"),
        ('{"name": "x"}', "no `code` string"),
        ("[1, 2]", "must be a JSON object"),
    ],
)
def test_invalid_answer_goes_back_with_the_exact_error(bad: str, error_part: str) -> None:
    model = FakeCodeGenerator(bad, GOOD)
    result = generation(model).run(messages())
    assert result.model_requests == 2
    assert len(model.prompts) == 2
    repair = model.prompts[1]
    assert repair[-2].role == "assistant" and repair[-2].content == bad
    assert repair[-1].role == "user" and error_part in repair[-1].content
    assert result.errors and error_part in result.errors[0]
    assert (result.input_tokens, result.output_tokens) == (20, 40)


def test_at_most_two_repair_rounds_then_generation_failed() -> None:
    bad = answer_json(code="import requests\ndef run(p):\n  return 1\n")
    model = FakeCodeGenerator(bad, bad, bad, GOOD)
    with pytest.raises(GenerationFailed) as info:
        generation(model).run(messages())
    assert len(model.prompts) == 3
    assert "after 2 repair rounds" in str(info.value)
    assert "requests" in str(info.value)
    assert len(info.value.errors) == 3
    assert model.answers  # the good answer was never asked for


def test_model_unavailable_is_not_retried_by_the_loop() -> None:
    model = FakeCodeGenerator(ModelUnavailable("down"), GOOD)
    with pytest.raises(ModelUnavailable):
        generation(model).run(messages())
    assert len(model.prompts) == 1


def test_fenced_json_is_accepted() -> None:
    data, error = parse_answer("```json\n" + GOOD + "\n```")
    assert error is None and data is not None and data["code"] == COUNT_LINES


def test_system_prompt_names_the_allowed_packages_and_task_type() -> None:
    msgs = create_messages(
        description="make 10 random numbers", task_type="generator", packages=("numpy", "pandas")
    )
    system = msgs[0].content
    assert "numpy, pandas" in system and "called with None" in system
    assert "make 10 random numbers" in msgs[1].content


@pytest.mark.parametrize(
    ("raw", "name"),
    [
        ("Count Lines!", "count_lines"),
        ("count-lines v2", "count_lines_v2"),
        ("42 things", "task_42_things"),
        ("", "task"),
    ],
)
def test_names_are_snake_case(raw: str, name: str) -> None:
    assert snake_case(raw) == name


def test_metadata_fields_are_normalised() -> None:
    raw = json.loads(GOOD)
    raw["name"] = "Count The Lines"
    raw["inputs"] = "a csv"
    model = FakeCodeGenerator(json.dumps(raw))
    result = generation(model).run(messages())
    assert result.name == "count_the_lines"
    assert result.inputs == {"description": "a csv", "formats": []}
