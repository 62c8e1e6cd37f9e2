"""Endpoint handlers: parse and validate, call one service method, serialise.

Each handler returns ``(status, body)``; errors are raised (``ApiError`` or ``ServiceError``) and
turned into the one error shape by the app.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bot.api import serialize
from bot.api.http import (
    JSON_BODY_LIMIT,
    MAX_VERSION,
    MULTIPART_OVERHEAD,
    ApiError,
    Field,
    Request,
    invalid,
    is_json,
    parse_json_object,
    parse_multipart,
    validate,
)
from bot.services.container import Services
from bot.services.errors import NotFound
from bot.services.tasks import MAX_DESCRIPTION, TASK_TYPES

REQUESTED_BY = "api"
SOURCE = "api"
TEAM_ID = ""  # the local workspace, as the terminal uses
MAX_LIST = 100
MAX_USAGE_DAYS = 366
DEFAULT_LIST = 20
INPUT_TEXT_NAME = "input.txt"
_RUN_ID = re.compile(r"^[0-9a-fA-F-]{1,36}$")

Reply = tuple[int, dict[str, Any]]

CREATE_FIELDS = {
    "desired_action": Field(str, required=True, max_length=MAX_DESCRIPTION),
    "task_type": Field(str, choices=TASK_TYPES),
}
REFINE_FIELDS = {"feedback": Field(str, required=True, max_length=MAX_DESCRIPTION)}
RUN_FIELDS = {
    "input_text": Field(str, allow_nul=True),
    "version": Field(int, minimum=1, maximum=MAX_VERSION),
}


def _unsupported(media_type: str, accepted: str) -> ApiError:
    shown = media_type or "none"
    return ApiError(415, "unsupported_media_type", f"Content-Type {shown} is not {accepted}.")


def json_body(request: Request, *, limit: int = JSON_BODY_LIMIT) -> dict[str, Any]:
    media = request.media_type()
    if not is_json(media):
        raise _unsupported(media, "application/json")
    return parse_json_object(request.read_body(limit))


def _version_query(request: Request) -> int | None:
    return request.query_int("version", minimum=1, maximum=MAX_VERSION)


@dataclass
class Handlers:
    services: Services

    # --- tasks -------------------------------------------------------------------------------

    def create(self, request: Request, params: Mapping[str, str]) -> Reply:
        body = validate(json_body(request), CREATE_FIELDS)
        detail = self.services.tasks.create(
            description=body["desired_action"],
            task_type=body.get("task_type", "passthrough"),
            requested_by=REQUESTED_BY,
            source=SOURCE,
        )
        return 201, serialize.task_detail(detail)

    def refine(self, request: Request, params: Mapping[str, str]) -> Reply:
        body = validate(json_body(request), REFINE_FIELDS)
        result = self.services.tasks.refine(
            params["id"], feedback=body["feedback"], requested_by=REQUESTED_BY, team_id=TEAM_ID
        )
        return 201, serialize.refinement(result)

    def show(self, request: Request, params: Mapping[str, str]) -> Reply:
        detail = self.services.tasks.show(
            params["id"], version=_version_query(request), team_id=TEAM_ID
        )
        return 200, serialize.task_detail(detail)

    def delete(self, request: Request, params: Mapping[str, str]) -> Reply:
        task = self.services.housekeeping.delete(params["id"], team_id=TEAM_ID)
        return 200, {"task_id": task.id, "deleted": True}

    def versions(self, request: Request, params: Mapping[str, str]) -> Reply:
        task = self.services.tasks.get(params["id"], team_id=TEAM_ID)
        views = self.services.tasks.versions(task.id, team_id=TEAM_ID)
        return 200, serialize.versions(task.id, views)

    def list(self, request: Request, params: Mapping[str, str]) -> Reply:
        limit = request.query_int("limit", minimum=1, maximum=MAX_LIST) or DEFAULT_LIST
        return 200, serialize.task_list(self.services.tasks.list(team_id=TEAM_ID, limit=limit))

    # --- runs --------------------------------------------------------------------------------

    def run(self, request: Request, params: Mapping[str, str]) -> Reply:
        data, name, version = self._run_input(request)
        query_version = _version_query(request)
        if version is not None and query_version is not None and version != query_version:
            raise invalid("`version` is given twice with different values (query and body).")
        view = self.services.runs.request(
            params["id"],
            requested_by=REQUESTED_BY,
            input_data=data,
            input_name=name,
            version=version if version is not None else query_version,
            team_id=TEAM_ID,
        )
        return 202, serialize.run_accepted(view)

    def usage(self, request: Request, params: Mapping[str, str]) -> Reply:
        """What was spent by the API's workspace, by user and task, and today's budgets."""
        days = request.query_int("days", minimum=1, maximum=MAX_USAGE_DAYS) or 1
        report = self.services.usage.report(team_id=TEAM_ID, user_id=REQUESTED_BY, days=days)
        return 200, serialize.usage(report)

    def get_run(self, request: Request, params: Mapping[str, str]) -> Reply:
        run_id = params["id"]
        if not _RUN_ID.match(run_id):
            raise NotFound(f"No run {run_id[:40]!r}.")
        return 200, serialize.run(self.services.runs.get(run_id.lower()))

    def stop_run(self, request: Request, params: Mapping[str, str]) -> Reply:
        run_id = params["id"]
        if not _RUN_ID.match(run_id):
            raise NotFound(f"No run {run_id[:40]!r}.")
        stopped = self.services.stops.stop_run(
            run_id.lower(), by=REQUESTED_BY, team_id=TEAM_ID, operator=True
        )
        return 202, serialize.run(self.services.runs.get(stopped.run_id))

    def _run_input(self, request: Request) -> tuple[bytes | None, str | None, int | None]:
        """(input bytes, input name, version) from a multipart upload or a JSON body."""
        limit = self.services.runs.max_input_bytes
        media = request.media_type()
        if media == "multipart/form-data":
            body = request.read_body(limit + MULTIPART_OVERHEAD)
            return self._multipart_input(request.header("Content-Type"), body, limit)
        if not media and request.content_length() in (None, 0):
            request.read_body(0)
            return None, None, None  # no body at all: same as {}
        if not is_json(media):
            raise _unsupported(media, "application/json or multipart/form-data")
        fields = validate(json_body(request, limit=limit + JSON_BODY_LIMIT), RUN_FIELDS)
        text: str | None = fields.get("input_text")
        if text is None:
            return None, None, fields.get("version")
        data = text.encode("utf-8")
        if len(data) > limit:
            raise _input_too_large(len(data), limit)
        return data, INPUT_TEXT_NAME, fields.get("version")

    @staticmethod
    def _multipart_input(
        content_type: str, body: bytes, limit: int
    ) -> tuple[bytes, str, int | None]:
        files = []
        version: int | None = None
        for part in parse_multipart(content_type, body):
            if part.name == "file":
                files.append(part)
            elif part.name == "version":
                raw = part.data.decode("ascii", "replace").strip()
                if not raw.isdigit() or not 1 <= int(raw) <= MAX_VERSION:
                    raise invalid(f"Form field `version` must be a whole number 1..{MAX_VERSION}.")
                version = int(raw)
            else:
                raise invalid(f"Unknown form field `{part.name[:40]}`; allowed: `file`, `version`.")
        if len(files) != 1:
            raise invalid("Send exactly one form field `file` holding the input file.")
        upload = files[0]
        if len(upload.data) > limit:
            raise _input_too_large(len(upload.data), limit)
        return upload.data, upload.filename or "input", version


def _input_too_large(size: int, limit: int) -> ApiError:
    return ApiError(
        413,
        "too_large",
        f"The input is {size} bytes; the limit is {limit} bytes (SANDBOX_MAX_INPUT_MB).",
    )
