"""The API's bodies as pydantic models: what requests may hold, what answers hold. The OpenAPI
document is generated from these; ``of`` builds an answer from a service view."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field

from bot.services.checks import Check
from bot.services.tasks import MAX_DESCRIPTION
from bot.services.views import Refinement, TaskDetail, TaskSummary, TaskView, VersionView
from storage.kinds import RequestKind, RunStatus, TaskState, TaskType, VersionState

MAX_VERSION = 2**31 - 1

# Text the services accept: no NUL, and at least one character that is not whitespace
# (Python's ``str.strip`` also strips \x1c-\x1f and \x85, so those do not count). Documented,
# not enforced here: the service's own answer to blank text is the clearer one.
TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085][^\u0000]*$"


def _unicode(value: str) -> str:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("is not valid Unicode text") from None
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _whole(value: object) -> object:
    return int(value) if isinstance(value, float) and value.is_integer() else value  # 2.0 is 2


Description = Annotated[
    str,
    Field(
        strict=True,
        min_length=1,
        max_length=MAX_DESCRIPTION,
        json_schema_extra={"pattern": TEXT_PATTERN},
    ),
    AfterValidator(_no_nul),
    AfterValidator(_unicode),
]
Version = Annotated[int, Field(strict=True, ge=1, le=MAX_VERSION), BeforeValidator(_whole)]


def _absent_not_null(schema: dict[str, Any]) -> None:
    """An optional field is documented as absent or a value: ``null`` means the same as absent
    but is not what a client should send (``{"input_text": null}`` is no input)."""
    for name, prop in schema.get("properties", {}).items():
        options = prop.get("anyOf")
        if options and {"type": "null"} in options and len(options) == 2:
            [kept] = [o for o in options if o != {"type": "null"}]
            rest = {k: v for k, v in prop.items() if k not in ("anyOf", "default")}
            schema["properties"][name] = {**rest, **kept}


class Request(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_absent_not_null)


class CreateTask(Request):
    desired_action: Description
    task_type: TaskType = TaskType.PASSTHROUGH


class RefineTask(Request):
    feedback: Description


class RunJson(Request):
    """``input_text`` becomes the input file ``input.txt``; send ``{}`` (or no body) for a
    generator task."""

    input_text: Annotated[str, Field(strict=True), AfterValidator(_unicode)] | None = None
    version: Version | None = None


class RunUpload(Request):
    file: bytes = Field(json_schema_extra={"format": "binary"}, description="The input file.")
    version: Version | None = None


# --- answers ----------------------------------------------------------------------------------


class Answer(BaseModel):
    model_config = ConfigDict(frozen=True)


class CheckItem(Answer):
    name: str
    code: str
    ok: bool
    error: Any = None


class Checks(Answer):
    passed: int
    total: int
    summary: str
    items: list[CheckItem]
    replaced: list[dict[str, Any]]

    @classmethod
    def of(cls, view: VersionView) -> Checks:
        """The version's self-checks: counts, a summary line, each check with its outcome."""
        outcomes = {r.name: r for r in view.check_results}

        def item(check: Check) -> CheckItem:
            outcome = outcomes.get(check.name)
            return CheckItem(
                name=check.name,
                code=check.code,
                ok=outcome is not None and outcome.ok,
                error=outcome.error if outcome is not None else None,
            )

        return cls(
            passed=view.checks_passed,
            total=len(view.check_results),
            summary=view.check_summary,
            items=[item(c) for c in view.checks],
            replaced=[{"name": r.name, "reason": r.reason} for r in view.replaced_checks],
        )


class Cost(Answer):
    """What a version cost and who made it."""

    model: str
    prompt_version: str
    response_format: str | None = Field(description="The response format the server accepted.")
    model_requests: int
    input_tokens: int
    output_tokens: int
    tokens: int
    check_cpu_seconds: float | None
    cost_usd: float | None = Field(description="null: the model's price is unknown")

    @classmethod
    def of(cls, view: VersionView) -> Cost:
        return cls(
            model=view.model,
            prompt_version=view.prompt_version,
            response_format=view.response_mode,
            model_requests=view.model_requests,
            input_tokens=view.input_tokens,
            output_tokens=view.output_tokens,
            tokens=view.tokens,
            check_cpu_seconds=view.check_cpu_seconds,
            cost_usd=view.cost_usd,
        )


class TaskOut(Answer):
    """The seed's create answer (id, version, name, task_type, state, metadata, code,
    created_at) plus the task's description and the version's provenance."""

    id: str
    version: int
    current_version: int | None
    name: str | None
    desired_action: str
    task_type: TaskType
    state: TaskState
    metadata: dict[str, Any]
    code: str
    change_summary: str | None
    version_state: VersionState
    checks: Checks
    cost: Cost
    created_at: datetime
    version_created_at: datetime

    @classmethod
    def fields_of(cls, detail: TaskDetail) -> dict[str, Any]:
        task, version = detail.task, detail.version
        return {
            "id": task.id,
            "version": version.number,
            "current_version": task.current_version,
            "name": task.name,
            "desired_action": task.desired_action,
            "task_type": task.task_type,
            "state": task.state,
            "metadata": dict(version.metadata),
            "code": version.code,
            "change_summary": version.change_summary,
            "version_state": version.state,
            "checks": Checks.of(version),
            "cost": Cost.of(version),
            "created_at": task.created_at,
            "version_created_at": version.created_at,
        }

    @classmethod
    def of(cls, detail: TaskDetail) -> TaskOut:
        return cls(**cls.fields_of(detail))


class RefinementOut(TaskOut):
    previous_version: int
    diff: str

    @classmethod
    def of_refinement(cls, result: Refinement) -> RefinementOut:
        detail = TaskDetail(result.task, result.version)
        fields = cls.fields_of(detail)
        return cls(**fields, previous_version=result.previous.number, diff=result.diff)


class VersionOut(Answer):
    version: int
    request_kind: RequestKind
    request_text: str
    requested_by: str
    change_summary: str | None
    name: Any
    title: Any
    summary: Any
    model: str
    prompt_version: str
    input_tokens: int
    output_tokens: int
    state: VersionState
    checks: Checks
    cost: Cost
    created_at: datetime

    @classmethod
    def of(cls, view: VersionView) -> VersionOut:
        return cls(
            version=view.number,
            request_kind=view.request_kind,
            request_text=view.request_text,
            requested_by=view.requested_by,
            change_summary=view.change_summary,
            name=view.metadata.get("name"),
            title=view.metadata.get("title"),
            summary=view.metadata.get("summary"),
            model=view.model,
            prompt_version=view.prompt_version,
            input_tokens=view.input_tokens,
            output_tokens=view.output_tokens,
            state=view.state,
            checks=Checks.of(view),
            cost=Cost.of(view),
            created_at=view.created_at,
        )


class VersionList(Answer):
    task_id: str
    versions: list[VersionOut]


class TaskListItem(Answer):
    id: str
    name: str | None
    desired_action: str
    task_type: TaskType
    state: TaskState
    state_detail: str | None
    current_version: int | None
    source: str
    created_at: datetime
    updated_at: datetime
    last_run_status: RunStatus | None

    @classmethod
    def of(cls, summary: TaskSummary) -> TaskListItem:
        task: TaskView = summary.task
        return cls(
            id=task.id,
            name=task.name,
            desired_action=task.desired_action,
            task_type=task.task_type,
            state=task.state,
            state_detail=task.state_detail,
            current_version=task.current_version,
            source=task.source,
            created_at=task.created_at,
            updated_at=task.updated_at,
            last_run_status=summary.last_run_status,
        )


class TaskList(Answer):
    tasks: list[TaskListItem]


class Deleted(Answer):
    task_id: str
    deleted: bool


class ErrorDetail(Answer):
    code: str
    message: str


class ErrorBody(Answer):
    """Every error: ``{"error": {"code": "not_found", "message": "..."}}``."""

    model_config = ConfigDict(frozen=True, extra="forbid")
    error: ErrorDetail
