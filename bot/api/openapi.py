"""The OpenAPI 3.1 document served at ``GET /api/openapi.json``; schemathesis holds us to it."""

from __future__ import annotations

from typing import Any

from bot.api.http import JSON_BODY_LIMIT, MAX_VERSION
from bot.api.openapi_usage import usage_path, usage_schemas
from bot.api.serialize import FILE_INLINE_LIMIT
from bot.services.tasks import MAX_DESCRIPTION, TASK_TYPES

OPENAPI_PATH = "/api/openapi.json"
JSON = "application/json"

# Text the services accept: no NUL, and at least one character that is not whitespace
# (Python's ``str.strip`` also strips \x1c-\x1f and \x85, so those do not count).
_TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000\u001c-\u001f\u0085][^\u0000]*$"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(kind: str, **extra: Any) -> dict[str, Any]:
    return {"type": [kind, "null"], **extra}


def _obj(properties: dict[str, Any], *, closed: bool = True) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": not closed,
    }


_TIME = {"type": "string", "format": "date-time"}
_TIME_OR_NULL = _nullable("string", format="date-time")
_TASK_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "A task id (UUID) or any unique prefix of 6 or more characters.",
    "schema": {"type": "string", "minLength": 6, "maxLength": 36, "pattern": "^[0-9a-fA-F-]+$"},
}
_VERSION_QUERY = {
    "name": "version",
    "in": "query",
    "required": False,
    "description": "A version number; the current version when absent.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
}

_ERROR_TEXT = {
    400: "Malformed request: the body is not JSON, not an object, or not parseable multipart.",
    401: "Missing or wrong bearer token.",
    403: "Not allowed.",
    404: "Unknown route or id, or the API is off (no API_TOKEN configured).",
    409: "The id is ambiguous, or the task has no working version yet.",
    413: "The body or the input is over its limit.",
    415: "The Content-Type is not one this endpoint accepts.",
    422: "A field is missing, of the wrong type, unknown, too long, or refused by the service.",
    429: "A daily budget is spent (the message says which, and when it resets); nothing started.",
    500: "Unexpected failure on the server (logged).",
    503: "The model server or the database could not be reached.",
}


def _error(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": _ERROR_TEXT[status],
        "content": {JSON: {"schema": _ref("Error")}},
    }
    if status == 401:
        response["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string"}, "description": "Bearer challenge"}
        }
    return response


def _responses(ok: int, ok_schema: str, ok_text: str, *errors: int) -> dict[str, Any]:
    out: dict[str, Any] = {
        str(ok): {"description": ok_text, "content": {JSON: {"schema": _ref(ok_schema)}}}
    }
    for status in sorted({401, 404, 500, *errors}):
        out[str(status)] = _error(status)
    return out


def _json_body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {JSON: {"schema": _ref(schema)}}}


def _schemas(max_input_bytes: int) -> dict[str, Any]:
    task_type = {"type": "string", "enum": list(TASK_TYPES)}
    state = {"type": "string", "enum": ["generating", "ready", "failed"]}
    run_status = {
        "type": "string",
        "enum": ["queued", "running", "succeeded", "failed", "timed_out", "killed"],
    }
    description = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_DESCRIPTION,
        "pattern": _TEXT_PATTERN,
    }
    task_detail = {
        "id": {"type": "string"},
        "version": {"type": "integer"},
        "current_version": _nullable("integer"),
        "name": _nullable("string"),
        "desired_action": {"type": "string"},
        "task_type": task_type,
        "state": state,
        "metadata": {"type": "object", "additionalProperties": True},
        "code": {"type": "string"},
        "change_summary": _nullable("string"),
        "version_state": {"type": "string", "enum": ["ready", "draft"]},
        "checks": _ref("Checks"),
        "cost": _ref("Cost"),
        "created_at": _TIME,
        "version_created_at": _TIME,
    }
    summary = {
        "id": {"type": "string"},
        "name": _nullable("string"),
        "desired_action": {"type": "string"},
        "task_type": task_type,
        "state": state,
        "state_detail": _nullable("string"),
        "current_version": _nullable("integer"),
        "source": {"type": "string"},
        "created_at": _TIME,
        "updated_at": _TIME,
        "last_run_status": {"type": ["string", "null"], "enum": [*run_status["enum"], None]},
    }
    return {
        "Error": _obj({"error": _obj({"code": {"type": "string"}, "message": {"type": "string"}})}),
        "CreateTask": {
            "type": "object",
            "properties": {"desired_action": description, "task_type": task_type},
            "required": ["desired_action"],
            "additionalProperties": False,
        },
        "RefineTask": {
            "type": "object",
            "properties": {"feedback": description},
            "required": ["feedback"],
            "additionalProperties": False,
        },
        "RunJson": {
            "type": "object",
            "description": "`input_text` becomes the input file `input.txt`; send `{}` (or no "
            "body) for a generator task.",
            "properties": {
                "input_text": {"type": "string", "maxLength": max_input_bytes},
                "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
            },
            "additionalProperties": False,
        },
        "RunUpload": {
            "type": "object",
            "properties": {
                "file": {
                    "type": "string",
                    "format": "binary",
                    "description": f"The input file, at most {max_input_bytes} bytes.",
                },
                "version": {"type": "integer", "minimum": 1, "maximum": MAX_VERSION},
            },
            "required": ["file"],
            "additionalProperties": False,
        },
        "Checks": _obj(
            {
                "passed": {"type": "integer"},
                "total": {"type": "integer"},
                "summary": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": _obj(
                        {
                            "name": {"type": "string"},
                            "code": {"type": "string"},
                            "ok": {"type": "boolean"},
                            "error": _nullable("string"),
                        }
                    ),
                },
                "replaced": {
                    "type": "array",
                    "items": _obj({"name": {"type": "string"}, "reason": {"type": "string"}}),
                },
            }
        ),
        "TaskDetail": _obj(task_detail),
        "Refinement": _obj(
            {**task_detail, "previous_version": {"type": "integer"}, "diff": {"type": "string"}}
        ),
        "Version": _obj(
            {
                "version": {"type": "integer"},
                "request_kind": {"type": "string"},
                "request_text": {"type": "string"},
                "requested_by": {"type": "string"},
                "change_summary": _nullable("string"),
                "name": {},
                "title": {},
                "summary": {},
                "model": {"type": "string"},
                "prompt_version": {"type": "string"},
                "input_tokens": {"type": "integer"},
                "output_tokens": {"type": "integer"},
                "state": {"type": "string", "enum": ["ready", "draft"]},
                "checks": _ref("Checks"),
                "cost": _ref("Cost"),
                "created_at": _TIME,
            }
        ),
        "VersionList": _obj(
            {"task_id": {"type": "string"}, "versions": {"type": "array", "items": _ref("Version")}}
        ),
        "Deleted": _obj({"task_id": {"type": "string"}, "deleted": {"type": "boolean"}}),
        "TaskList": _obj(
            {"tasks": {"type": "array", "items": _obj(summary)}},
        ),
        "RunLinks": _obj({"run": {"type": "string"}}),
        "RunAccepted": _obj(
            {
                "run_id": {"type": "string"},
                "status": run_status,
                "task_id": {"type": "string"},
                "version": {"type": "integer"},
                "links": _ref("RunLinks"),
            }
        ),
        "Run": _obj(
            {
                "run_id": {"type": "string"},
                "task_id": {"type": "string"},
                "version": {"type": "integer"},
                "status": run_status,
                "final": {"type": "boolean"},
                "requested_by": {"type": "string"},
                "attempts": {"type": "integer"},
                "queued_at": _TIME,
                "started_at": _TIME_OR_NULL,
                "finished_at": _TIME_OR_NULL,
                "duration_seconds": _nullable("number"),
                "input": {
                    "oneOf": [
                        {"type": "null"},
                        _obj(
                            {
                                "name": _nullable("string"),
                                "size": {"type": "integer"},
                                "sha256": _nullable("string"),
                            }
                        ),
                    ]
                },
                "result_kind": {
                    "type": ["string", "null"],
                    "enum": ["json", "text", "bytes", "none", None],
                },
                "result_encoding": {
                    "type": ["string", "null"],
                    "enum": ["json", "text", "base64", None],
                    "description": "How `result` is given: `json` (the value itself), `text`, "
                    "or `base64` (bytes). A JSON result cut at the output limit is `text`.",
                },
                "result": {"description": "The run's return value; see `result_encoding`."},
                "result_truncated": {"type": "boolean"},
                "table": {
                    "description": "When the result is a list of flat records: its columns in "
                    "order, which are numeric, and how many rows (the rows are `result`).",
                    "oneOf": [
                        {"type": "null"},
                        _obj(
                            {
                                "columns": {"type": "array", "items": {"type": "string"}},
                                "numeric": {"type": "array", "items": {"type": "boolean"}},
                                "rows": {"type": "integer"},
                            }
                        ),
                    ],
                },
                "stdout": _nullable("string"),
                "stderr": _nullable("string"),
                "failure": {
                    "oneOf": [
                        {"type": "null"},
                        _obj(
                            {
                                "type": _nullable("string"),
                                "message": _nullable("string"),
                                "traceback_tail": _nullable("string"),
                                "killed_reason": _nullable("string"),
                            }
                        ),
                    ]
                },
                "files": {
                    "type": "array",
                    "description": f"Output files. Content (base64) is included for files up "
                    f"to {FILE_INLINE_LIMIT} bytes; larger ones have `content_base64: null` "
                    "and `content_omitted: true`.",
                    "items": _obj(
                        {
                            "name": {"type": "string"},
                            "size": {"type": "integer"},
                            "content_base64": _nullable("string"),
                            "content_omitted": {"type": "boolean"},
                        }
                    ),
                },
                "links": _ref("RunLinks"),
                "cpu_seconds": _nullable("number"),
            }
        ),
        **usage_schemas(),
    }


def build_openapi(*, max_input_bytes: int) -> dict[str, Any]:
    run_body = {
        "required": False,
        "description": "A multipart upload with a `file` part, or JSON. Size limits: the input "
        f"file or text at most {max_input_bytes} bytes; other JSON bodies {JSON_BODY_LIMIT} bytes. "
        "`version` may be given in the query or the body; both with different values is 422.",
        "content": {
            JSON: {"schema": _ref("RunJson")},
            "multipart/form-data": {
                "schema": _ref("RunUpload"),
                "encoding": {"file": {"contentType": "application/octet-stream"}},
            },
        },
    }
    paths: dict[str, Any] = {
        "/api/task/create": {
            "post": {
                "operationId": "createTask",
                "summary": "Generate a new task (blocks while the model writes the code).",
                "requestBody": _json_body("CreateTask"),
                "responses": _responses(
                    201, "TaskDetail", "The task and its version 1.", 400, 413, 415, 422, 429, 503
                ),
            }
        },
        "/api/task/{id}": {
            "get": {
                "operationId": "getTask",
                "summary": "A task with one version's metadata and code.",
                "parameters": [_TASK_ID, _VERSION_QUERY],
                "responses": _responses(200, "TaskDetail", "The task.", 409, 422),
            },
            "delete": {
                "operationId": "deleteTask",
                "summary": "Delete a task with its versions, runs and their files (for good).",
                "parameters": [_TASK_ID],
                "responses": _responses(200, "Deleted", "The task is gone.", 409, 422, 503),
            },
        },
        "/api/task/{id}/refine": {
            "post": {
                "operationId": "refineTask",
                "summary": "Ask for a change; stores the next version (blocks on the model).",
                "parameters": [_TASK_ID],
                "requestBody": _json_body("RefineTask"),
                "responses": _responses(
                    201, "Refinement", "The new version.", 400, 409, 413, 415, 422, 429, 503
                ),
            }
        },
        "/api/task/{id}/run": {
            "post": {
                "operationId": "runTask",
                "summary": "Queue a run of a task version; poll the run's link for the result.",
                "parameters": [_TASK_ID, _VERSION_QUERY],
                "requestBody": run_body,
                "responses": _responses(
                    202, "RunAccepted", "The run is queued.", 400, 409, 413, 415, 422, 429
                ),
            }
        },
        "/api/task/{id}/versions": {
            "get": {
                "operationId": "listVersions",
                "summary": "Every version of a task, oldest first.",
                "parameters": [_TASK_ID],
                "responses": _responses(200, "VersionList", "The versions.", 409, 422),
            }
        },
        "/api/run/{id}": {
            "get": {
                "operationId": "getRun",
                "summary": "A run's status, timings, input, result, output and files.",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "The run id (a UUID) as returned by the run endpoint.",
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F-]{1,36}$"},
                    }
                ],
                "responses": _responses(200, "Run", "The run."),
            }
        },
        "/api/run/{id}/stop": {
            "post": {
                "operationId": "stopRun",
                "summary": "Stop a queued or running run: it ends killed (reason stopped).",
                "parameters": [
                    {
                        "name": "id",
                        "in": "path",
                        "required": True,
                        "description": "The run id (a UUID) as returned by the run endpoint.",
                        "schema": {"type": "string", "pattern": "^[0-9a-fA-F-]{1,36}$"},
                    }
                ],
                "responses": _responses(202, "Run", "The run, as it is when the stop was asked."),
            }
        },
        "/api/tasks": {
            "get": {
                "operationId": "listTasks",
                "summary": "Recent tasks, newest first.",
                "parameters": [
                    {
                        "name": "limit",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer", "minimum": 1, "maximum": 100, "default": 20},
                    }
                ],
                "responses": _responses(200, "TaskList", "The tasks.", 422),
            }
        },
        "/api/usage": usage_path(_responses(200, "Usage", "The spend.", 422)),
        OPENAPI_PATH: {
            "get": {
                "operationId": "openapi",
                "summary": "This document (no token needed while the API is on).",
                "security": [],
                "responses": {
                    "200": {
                        "description": "The OpenAPI document.",
                        "content": {JSON: {"schema": {"type": "object"}}},
                    },
                    "404": _error(404),
                    "500": _error(500),
                },
            }
        },
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Taskbot API",
            "version": "1",
            "description": "Turn plain-language requests into small Python programs, run them "
            "on your files, read every version. Errors always have the shape "
            '`{"error": {"code": "...", "message": "..."}}`.',
        },
        "servers": [{"url": "/"}],
        "security": [{"bearerAuth": []}],
        "paths": paths,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}},
            "schemas": _schemas(max_input_bytes),
        },
    }
