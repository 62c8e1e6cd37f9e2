"""The model's answer as a pydantic model: its JSON schema is what is sent as the
``json_schema`` response format (and written into the prompt in JSON and text mode).

Answers are still read liberally (``bot.services.answers``): a model that strays from the
schema is normalised, not refused; this model only says what to ask for.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import GenerateJsonSchema


class _Strict(BaseModel):
    # Structured output's strict mode: every property required, nothing else allowed.
    model_config = ConfigDict(extra="forbid")


class Shape(_Strict):
    description: str
    formats: list[str]


class CheckAnswer(_Strict):
    name: str
    code: str


class ReplacedCheck(_Strict):
    name: str
    reason: str


class Answer(_Strict):
    name: str = Field(description="snake_case name of the task")
    title: str
    summary: str = Field(description="one or two sentences on what it does")
    inputs: Shape
    outputs: Shape
    code: str = Field(description="the whole Python module")
    checks: list[CheckAnswer] = Field(
        description="1 to 5 self-checks, each a function check_<what>() with no arguments"
    )
    replaced_checks: list[ReplacedCheck] = Field(
        description="earlier checks this version drops or rewrites, and why"
    )
    change_summary: str = Field(
        description="what changed from the previous version (empty for a new task)"
    )


class _Untitled(GenerateJsonSchema):
    """No generated ``title`` on every property: they only lengthen the prompt."""

    def field_title_should_be_set(self, schema: Any) -> bool:
        return False


def answer_schema() -> dict[str, Any]:
    schema = Answer.model_json_schema(schema_generator=_Untitled)
    schema.pop("title", None)
    for definition in schema.get("$defs", {}).values():
        definition.pop("title", None)
    return schema


ANSWER_SCHEMA: dict[str, Any] = answer_schema()
