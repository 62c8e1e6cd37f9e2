"""``PUT /api/task/{id}/pin`` (``{"version": N}``) and ``DELETE /api/task/{id}/pin``: the
version scheduled, workflow and MCP runs use (issue 18)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.api.handlers import TEAM_ID, Reply, json_body
from bot.api.http import MAX_VERSION, Field, Request, validate
from bot.services.container import Services
from bot.services.views import TaskView

PIN_FIELDS = {"version": Field(int, required=True, minimum=1, maximum=MAX_VERSION)}


def pinned(task: TaskView) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "pinned_version": task.pinned_version,
        "current_version": task.current_version,
        "runs_version": task.trigger_version,
    }


class PinHandlers:
    def __init__(self, services: Services) -> None:
        self.services = services

    def pin(self, request: Request, params: Mapping[str, str]) -> Reply:
        body = validate(json_body(request), PIN_FIELDS)
        task = self.services.pins.pin(params["id"], version=body["version"], team_id=TEAM_ID)
        return 200, pinned(task)

    def unpin(self, request: Request, params: Mapping[str, str]) -> Reply:
        return 200, pinned(self.services.pins.unpin(params["id"], team_id=TEAM_ID))
