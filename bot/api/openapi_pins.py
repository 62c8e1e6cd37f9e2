"""The OpenAPI part for pinning a version: ``/api/task/{id}/pin`` (issue 18)."""

from __future__ import annotations

from typing import Any

from bot.api.http import MAX_VERSION


def pin_schemas() -> dict[str, Any]:
    version = {"type": ["integer", "null"]}
    return {
        "Pin": {
            "type": "object",
            "properties": {
                "task_id": {"type": "string"},
                "pinned_version": version,
                "current_version": version,
                "runs_version": {**version, "description": "What unattended runs use."},
            },
            "required": ["task_id", "pinned_version", "current_version", "runs_version"],
            "additionalProperties": False,
        },
    }


def pin_path(
    task_id: dict[str, Any], responses: Any, *, max_version: int = MAX_VERSION
) -> dict[str, Any]:
    """``responses(ok, schema, text, *errors)`` is the document's own response builder."""
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "version": {"type": "integer", "minimum": 1, "maximum": max_version}
                    },
                    "required": ["version"],
                    "additionalProperties": False,
                }
            }
        },
    }
    return {
        "put": {
            "operationId": "pinVersion",
            "summary": "Pin a version: scheduled, workflow and MCP runs use it.",
            "parameters": [task_id],
            "requestBody": body,
            "responses": responses(200, "Pin", "The pin.", 400, 409, 413, 415, 422),
        },
        "delete": {
            "operationId": "unpinVersion",
            "summary": "Unpin: unattended runs use the current version again.",
            "parameters": [task_id],
            "responses": responses(200, "Pin", "Unpinned.", 409, 422),
        },
    }
