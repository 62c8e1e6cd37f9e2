"""The endpoints: each reads its input, calls one service method and returns an answer model.

Service calls are blocking, so the endpoints are plain ``def``s that FastAPI runs on its
thread pool; only body reading (``bodies``) runs on the event loop.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError
from starlette.convertors import Convertor, register_url_convertor

from bot.api import bodies
from bot.api.auth import Caller, require_principal
from bot.api.errors import invalid, unsupported, validation_message
from bot.api.guard import ErrorShapeRoute
from bot.api.models import (
    MAX_VERSION,
    CreateTask,
    Deleted,
    ErrorBody,
    RefinementOut,
    RefineTask,
    RunJson,
    TaskList,
    TaskListItem,
    TaskOut,
    VersionList,
    VersionOut,
)
from bot.api.run_models import RunAccepted, RunOut, Usage
from bot.services.container import Services
from bot.services.errors import NotFound
from bot.services.views import Workspace

SOURCE = "api"
MAX_LIST = 100
DEFAULT_LIST = 20
MAX_USAGE_DAYS = 366
MAX_WAIT_SECONDS = 30
_RUN_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")

ERROR_TEXT = {
    400: "Malformed request: the body is not JSON, not an object, or not parseable multipart.",
    401: "Missing or wrong bearer token.",
    403: "Not allowed.",
    404: "Unknown route or id, or the API is off (no API_TOKEN configured).",
    409: "The id is ambiguous, or the task has no working version yet.",
    413: "The body or the input is over its limit.",
    415: "The Content-Type is not one this endpoint accepts.",
    422: "A field is missing, of the wrong type, unknown, too long, or refused by the service.",
    429: "A daily budget is spent (the message says which, and when it resets), or a fair-share "
    "limit is reached (busy: how many are ahead); nothing started.",
    500: "Unexpected failure on the server (logged).",
    503: "The model server or the database could not be reached.",
}


def errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    out: dict[int | str, dict[str, Any]] = {}
    for status in sorted({401, 404, 422, 500, *statuses}):
        out[status] = {"model": ErrorBody, "description": ERROR_TEXT[status]}
    out[401]["headers"] = {
        "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}
    }
    return out


def json_request(schema: str, *, required: bool = True) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{schema}"}
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": ref}}}}


def known_query(request: Request) -> None:
    """Refuse query parameters the endpoint does not take, and any given twice (422)."""
    route = request.scope.get("route")  # the endpoint declares its query parameters itself
    names = (
        {p.alias for p in route.dependant.query_params} if isinstance(route, APIRoute) else set()
    )
    unknown = sorted(set(request.query_params) - names)
    if unknown:
        shown = ", ".join(f"`{n[:40]}`" for n in unknown[:5])
        raise invalid(f"Unknown query parameter(s) {shown}.")
    for name in request.query_params:
        if len(request.query_params.getlist(name)) > 1:
            raise invalid(f"Query parameter `{name}` is given more than once.")


class _TaskIdConvertor(Convertor[str]):
    """A path segment that is not the literal ``create``: ``GET /api/task/create`` is the
    create endpoint with the wrong method (405), never a task called "create"."""

    regex = "(?!create$)[^/]+"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("task_id", _TaskIdConvertor())


def get_services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


Svc = Annotated[Services, Depends(get_services)]
TaskId = Annotated[
    str,
    Path(
        description="A task id (UUID) or any unique prefix of 6 or more characters.",
        json_schema_extra={"minLength": 6, "maxLength": 36, "pattern": "^[0-9a-fA-F-]+$"},
    ),
]
RunId = Annotated[
    str,
    Path(
        description="The run id (a UUID) as returned by the run endpoint.",
        json_schema_extra={"pattern": "^[0-9a-fA-F-]{1,36}$"},
    ),
]
VersionQuery = Annotated[
    int | None,
    Query(ge=1, le=MAX_VERSION, description="A version number; the current version when absent."),
]


async def _json_body(request: Request) -> dict[str, Any]:
    return await bodies.json_object(request)


async def _run_input(request: Request, services: Svc) -> bodies.RunInput:
    """(input, name, version) from a multipart upload, a JSON body, or no body at all."""
    limit = services.runs.max_input_bytes
    media = bodies.media_type(request)
    if media == "multipart/form-data":
        return await bodies.multipart_input(request, limit)
    if not media and bodies.declared_length(request) in (None, 0):
        await bodies.read_body(request, 0)
        return bodies.RunInput(None, None, None)  # no body at all: same as {}
    if not bodies.is_json(media):
        raise unsupported(media, "application/json or multipart/form-data")
    payload = bodies.parse_json_object(
        await bodies.read_body(request, limit + bodies.JSON_BODY_LIMIT)
    )
    fields = parse(RunJson, payload)
    if fields.input_text is None:
        return bodies.RunInput(None, None, fields.version)
    data = fields.input_text.encode("utf-8")
    if len(data) > limit:
        raise bodies.input_too_large(len(data), limit)
    return bodies.RunInput(data, bodies.INPUT_TEXT_NAME, fields.version)


JsonBody = Annotated[dict[str, Any], Depends(_json_body)]
Model = TypeVar("Model", bound=BaseModel)


def parse(model: type[Model], body: dict[str, Any]) -> Model:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise invalid(validation_message(exc.errors(), allowed=model.model_fields)) from None


def api_router() -> APIRouter:
    """A router whose endpoints answer in the one error shape, need a principal, and refuse
    query parameters they do not declare."""
    return APIRouter(
        route_class=ErrorShapeRoute,
        dependencies=[Depends(require_principal), Depends(known_query)],
    )


router = api_router()


@router.post(
    "/api/task/create",
    status_code=201,
    operation_id="createTask",
    summary="Generate a new task (blocks while the model writes the code).",
    response_description="The task and its version 1.",
    responses=errors(400, 413, 415, 429, 503),
    openapi_extra=json_request("CreateTask"),
)
def create(caller: Caller, services: Svc, body: JsonBody) -> TaskOut:
    request = parse(CreateTask, body)
    detail = services.tasks.create(
        description=request.desired_action,
        task_type=request.task_type.value,
        requested_by=caller.user_id,
        source=SOURCE,
        workspace=Workspace(caller.team_id, caller.enterprise_id),
    )
    return TaskOut.of(detail)


@router.get("/api/tasks", operation_id="listTasks", summary="Recent tasks, newest first.")
def list_tasks(
    caller: Caller,
    services: Svc,
    limit: Annotated[int, Query(ge=1, le=MAX_LIST)] = DEFAULT_LIST,
) -> TaskList:
    summaries = services.personal.list(caller, limit=limit)
    return TaskList(tasks=[TaskListItem.of(s) for s in summaries])


@router.get(
    "/api/task/{id:task_id}",
    operation_id="getTask",
    summary="A task with one version's metadata and code.",
    responses=errors(409),
)
def show(caller: Caller, services: Svc, id: TaskId, version: VersionQuery = None) -> TaskOut:
    task = services.personal.task(caller, id)
    return TaskOut.of(services.tasks.show(task.id, version=version, team_id=caller.team_id))


@router.delete(
    "/api/task/{id:task_id}",
    operation_id="deleteTask",
    summary="Delete a task with its versions, runs and their files (for good).",
    responses=errors(409, 503),
)
def delete(caller: Caller, services: Svc, id: TaskId) -> Deleted:
    visible = services.personal.task(caller, id)
    task = services.housekeeping.delete(
        visible.id,
        team_id=caller.team_id,
        requested_by=None if caller.is_operator else caller.user_id,  # in Slack: its creator
    )
    return Deleted(task_id=task.id, deleted=True)


@router.post(
    "/api/task/{id:task_id}/refine",
    status_code=201,
    operation_id="refineTask",
    summary="Ask for a change; stores the next version (blocks on the model).",
    responses=errors(400, 409, 413, 415, 429, 503),
    openapi_extra=json_request("RefineTask"),
)
def refine(caller: Caller, services: Svc, id: TaskId, body: JsonBody) -> RefinementOut:
    task = services.personal.task(caller, id)
    request = parse(RefineTask, body)
    result = services.tasks.refine(
        task.id, feedback=request.feedback, requested_by=caller.user_id, team_id=caller.team_id
    )
    return RefinementOut.of_refinement(result)


@router.post(
    "/api/task/{id:task_id}/run",
    status_code=202,
    operation_id="runTask",
    summary="Queue a run of a task version; poll the run's link for the result.",
    responses=errors(400, 409, 413, 415, 429),
)
def run(
    caller: Caller,
    services: Svc,
    id: TaskId,
    given: Annotated[bodies.RunInput, Depends(_run_input)],
    version: VersionQuery = None,
) -> RunAccepted:
    if given.version is not None and version is not None and given.version != version:
        raise invalid("`version` is given twice with different values (query and body).")
    task = services.personal.task(caller, id)
    view = services.runs.request(
        task.id,
        requested_by=caller.user_id,
        input_data=given.data,
        input_name=given.name,
        version=given.version if given.version is not None else version,
        team_id=caller.team_id,
    )
    return RunAccepted.of(view)


@router.get(
    "/api/task/{id:task_id}/versions",
    operation_id="listVersions",
    summary="Every version of a task, oldest first.",
    responses=errors(409),
)
def versions(caller: Caller, services: Svc, id: TaskId) -> VersionList:
    task = services.personal.task(caller, id)
    views = services.tasks.versions(task.id, team_id=caller.team_id)
    return VersionList(task_id=task.id, versions=[VersionOut.of(v) for v in views])


@router.get(
    "/api/run/{id}",
    operation_id="getRun",
    summary="A run's status, timings, input, result, output and files; `wait` for its end.",
    responses=errors(),
)
def get_run(
    caller: Caller,
    services: Svc,
    id: RunId,
    wait: Annotated[
        float,
        Query(
            ge=0,
            le=MAX_WAIT_SECONDS,
            description="Seconds to wait for the run to end before answering (0: answer at "
            "once). The answer comes as soon as the run ends, whatever is left of the wait.",
        ),
    ] = 0,
) -> RunOut:
    if not _RUN_ID.match(id):
        raise NotFound(f"No run {id[:40]!r}.")
    run_id = id.lower()
    run = services.runs.get(run_id)
    try:
        services.personal.task(caller, run.task_id)  # a run is seen where its task is
    except NotFound:
        raise NotFound(f"No run {run_id}.") from None
    if wait > 0:  # woken by the run's event; the database is read again as the safety net
        sweep = services.settings.run_wait_sweep_seconds
        return RunOut.of(services.runs.wait(run_id, timeout=wait, sweep=sweep))
    return RunOut.of(run)


@router.get(
    "/api/usage",
    operation_id="getUsage",
    summary="What was spent by user and task, and today's budgets.",
    responses=errors(),
)
def usage(
    caller: Caller,
    services: Svc,
    days: Annotated[
        int, Query(ge=1, le=MAX_USAGE_DAYS, description="Days back, today included.")
    ] = 1,
) -> Usage:
    report = services.usage.report(team_id=caller.team_id, user_id=caller.user_id, days=days)
    if not caller.is_operator:  # tasks the person may not see are not named
        report = services.personal.redact_usage(caller, report)
    return Usage.of(report)
