"""``PUT /api/task/{id}/pin`` (``{"version": N}``) and ``DELETE /api/task/{id}/pin``: the
version scheduled, workflow and MCP runs use."""

from __future__ import annotations

from bot.api.auth import Caller
from bot.api.models import Answer, Request, Version
from bot.api.routes import JsonBody, Svc, TaskId, api_router, errors, json_request, parse
from bot.services.views import TaskView


class PinTask(Request):
    version: Version


class Pin(Answer):
    task_id: str
    pinned_version: int | None
    current_version: int | None
    runs_version: int | None  # what unattended runs use

    @classmethod
    def of(cls, task: TaskView) -> Pin:
        return cls(
            task_id=task.id,
            pinned_version=task.pinned_version,
            current_version=task.current_version,
            runs_version=task.trigger_version,
        )


router = api_router()


@router.put(
    "/api/task/{id:task_id}/pin",
    operation_id="pinVersion",
    summary="Pin a version: scheduled, workflow and MCP runs use it.",
    responses=errors(400, 409, 413, 415),
    openapi_extra=json_request("PinTask"),
)
def pin(caller: Caller, services: Svc, id: TaskId, body: JsonBody) -> Pin:
    request = parse(PinTask, body)
    task = services.personal.task(caller, id)  # 404 for a task this caller may not see
    return Pin.of(services.pins.pin(task.id, version=request.version, team_id=caller.team_id))


@router.delete(
    "/api/task/{id:task_id}/pin",
    operation_id="unpinVersion",
    summary="Unpin: unattended runs use the current version again.",
    responses=errors(409),
)
def unpin(caller: Caller, services: Svc, id: TaskId) -> Pin:
    task = services.personal.task(caller, id)
    return Pin.of(services.pins.unpin(task.id, team_id=caller.team_id))
