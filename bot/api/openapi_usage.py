"""The OpenAPI parts for cost and usage: the ``Cost`` of a version, ``GET /api/usage``."""

from __future__ import annotations

from typing import Any


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _obj(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


_TIME = {"type": "string", "format": "date-time"}


def usage_schemas() -> dict[str, Any]:
    spend = {
        "tokens": {"type": "integer"},
        "cost_usd": _nullable("number", description="null: no model price is known"),
        "cpu_seconds": {"type": "number"},
        "model_requests": {"type": "integer"},
        "runs": {"type": "integer"},
    }
    return {
        "Cost": _obj(
            {
                "model": {"type": "string"},
                "prompt_version": {"type": "string"},
                "response_format": {
                    "type": ["string", "null"],
                    "enum": ["json_schema", "json_object", "text", None],
                },
                "model_requests": {"type": "integer"},
                "input_tokens": {"type": "integer"},
                "output_tokens": {"type": "integer"},
                "tokens": {"type": "integer"},
                "check_cpu_seconds": _nullable("number"),
                "cost_usd": _nullable("number", description="null: the model's price is unknown"),
            }
        ),
        "Usage": _obj(
            {
                "since": _TIME,
                "until": _TIME,
                "total": _obj(spend),
                "by_user": {"type": "array", "items": _obj({"user": {"type": "string"}, **spend})},
                "by_task": {
                    "type": "array",
                    "items": _obj(
                        {"task_id": _nullable("string"), "name": _nullable("string"), **spend}
                    ),
                },
                "budgets": {
                    "type": "array",
                    "items": _obj(
                        {
                            "scope": {"type": "string", "enum": ["user", "workspace"]},
                            "unit": {"type": "string", "enum": ["tokens", "usd", "cpu_seconds"]},
                            "limit": {"type": "number"},
                            "spent": {"type": "number"},
                            "exceeded": {"type": "boolean"},
                        }
                    ),
                },
                "resets_at": _TIME,
            }
        ),
    }


def usage_path(responses: dict[str, Any]) -> dict[str, Any]:
    """``GET /api/usage``, answering ``responses`` (built with the main document's helpers)."""
    return {
        "get": {
            "operationId": "getUsage",
            "summary": "What was spent (tokens, money estimate, sandbox CPU) by user and "
            "task since the start of the UTC day `days - 1` ago, and today's budgets.",
            "parameters": [
                {
                    "name": "days",
                    "in": "query",
                    "required": False,
                    "schema": {"type": "integer", "minimum": 1, "maximum": 366, "default": 1},
                }
            ],
            "responses": responses,
        }
    }
