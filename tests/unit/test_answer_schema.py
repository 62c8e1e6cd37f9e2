"""The answer schema sent to the model is the pydantic model's, in the shape strict
structured output accepts."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from bot.services.answer_schema import ANSWER_SCHEMA, Answer
from bot.services.codegen import OpenAICodeGenerator
from tests.fakes.openai_server import COUNT_LINES, answer_json


def _objects(schema: dict[str, Any]) -> list[dict[str, Any]]:
    found = [schema, *schema.get("$defs", {}).values()]
    return [s for s in found if s.get("type") == "object"]


def test_every_object_requires_all_its_properties_and_allows_nothing_else() -> None:
    objects = _objects(ANSWER_SCHEMA)
    assert len(objects) == 4  # the answer, a shape, a check, a replaced check
    for obj in objects:
        assert obj["additionalProperties"] is False
        assert sorted(obj["required"]) == sorted(obj["properties"])
        assert "title" not in obj  # generated titles only lengthen the prompt
        assert all("title" not in prop for prop in obj["properties"].values())


def test_what_is_sent_is_the_models_schema() -> None:
    sent, response_format = OpenAICodeGenerator._payload([], ANSWER_SCHEMA, mode="json_schema")
    schema = response_format["json_schema"]["schema"]
    assert schema == ANSWER_SCHEMA
    assert set(schema["properties"]) == set(Answer.model_fields)


def test_a_well_formed_answer_fits_the_model_and_a_stray_field_does_not() -> None:
    answer = json.loads(answer_json(code=COUNT_LINES))
    assert Answer.model_validate(answer).code == COUNT_LINES
    with pytest.raises(ValidationError):
        Answer.model_validate({**answer, "extra": 1})
