"""Answers about runs and spend, as pydantic models built from service views."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any, Literal

from pydantic import Field

from bot.api.models import Answer
from bot.services.outcomes import load_json_result
from bot.services.runs import RunView
from bot.services.tables import as_table
from bot.services.usage import Spend, UsageReport
from storage.kinds import ResultKind, RunStatus

FILE_INLINE_LIMIT = 1024 * 1024
"""Output files up to this size carry their content (base64); larger ones only name and size."""

Encoding = Literal["json", "text", "base64"]


class RunLinks(Answer):
    run: str


def links(run_id: str) -> RunLinks:
    return RunLinks(run=f"/api/run/{run_id}")


class RunAccepted(Answer):
    run_id: str
    status: RunStatus
    task_id: str
    version: int
    links: RunLinks

    @classmethod
    def of(cls, view: RunView) -> RunAccepted:
        return cls(
            run_id=view.id,
            status=view.status,
            task_id=view.task_id,
            version=view.version_number,
            links=links(view.id),
        )


class RunInput(Answer):
    name: str | None
    size: int
    sha256: str | None


class Table(Answer):
    """A result that is a list of flat records, as the Slack ``table`` block shows it."""

    columns: list[str]
    numeric: list[bool]
    rows: int


class Failure(Answer):
    type: str | None
    message: str | None
    traceback_tail: str | None
    killed_reason: str | None


class OutputFile(Answer):
    name: str
    size: int
    content_base64: str | None = Field(description=f"Up to {FILE_INLINE_LIMIT} bytes inline.")
    content_omitted: bool


def _result(view: RunView) -> tuple[Encoding | None, Any]:
    """(encoding, value): ``json`` -> the JSON value, ``text`` -> a string, ``base64`` -> bytes.

    A stored JSON result that does not parse (cut at the output limit, too deep, stored by an
    older version) is returned as text; NaN and Infinity become null."""
    data = view.result
    if data is None or view.result_kind in (None, ResultKind.NONE):
        return None, None
    if view.result_kind is ResultKind.JSON:
        ok, value = load_json_result(data)
        return ("json", value) if ok else ("text", data.decode("utf-8", "replace"))
    if view.result_kind is ResultKind.TEXT:
        return "text", data.decode("utf-8", "replace")
    return "base64", base64.b64encode(data).decode("ascii")


def _table(value: Any) -> Table | None:
    table = as_table(value)
    if table is None:
        return None
    return Table(columns=list(table.columns), numeric=list(table.numeric), rows=len(table.rows))


def _file(name: str, size: int, content: bytes) -> OutputFile:
    inline = size <= FILE_INLINE_LIMIT
    return OutputFile(
        name=name,
        size=size,
        content_base64=base64.b64encode(content).decode("ascii") if inline else None,
        content_omitted=not inline,
    )


class RunOut(Answer):
    run_id: str
    task_id: str
    version: int
    status: RunStatus
    final: bool
    requested_by: str
    attempts: int
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration_seconds: float | None
    input: RunInput | None
    result_kind: ResultKind | None
    result_encoding: Encoding | None
    result: Any = Field(description="The run's return value; see `result_encoding`.")
    result_truncated: bool
    table: Table | None
    stdout: str | None
    stderr: str | None
    failure: Failure | None
    files: list[OutputFile]
    links: RunLinks
    cpu_seconds: float | None

    @classmethod
    def of(cls, view: RunView) -> RunOut:
        encoding, value = _result(view)
        failed = view.error_type or view.error_message or view.killed_reason
        return cls(
            run_id=view.id,
            task_id=view.task_id,
            version=view.version_number,
            status=view.status,
            final=view.final,
            requested_by=view.requested_by,
            attempts=view.attempts,
            queued_at=view.queued_at,
            started_at=view.started_at,
            finished_at=view.finished_at,
            duration_seconds=view.duration_seconds,
            input=None
            if view.input_size is None
            else RunInput(name=view.input_name, size=view.input_size, sha256=view.input_sha256),
            result_kind=view.result_kind,
            result_encoding=encoding,
            result=value,
            result_truncated=view.result_truncated,
            table=_table(value if encoding == "json" else None),
            stdout=view.stdout,
            stderr=view.stderr,
            failure=Failure(
                type=view.error_type,
                message=view.error_message,
                traceback_tail=view.traceback_tail,
                killed_reason=view.killed_reason,
            )
            if failed
            else None,
            files=[_file(f.name, f.size, f.content) for f in view.files],
            links=links(view.id),
            cpu_seconds=view.cpu_seconds,
        )


# --- usage ------------------------------------------------------------------------------------


class SpendOut(Answer):
    tokens: int
    cost_usd: float | None = Field(description="null: no model price is known")
    cpu_seconds: float
    model_requests: int
    runs: int

    @classmethod
    def fields(cls, spend: Spend) -> dict[str, Any]:
        return {
            "tokens": spend.tokens,
            "cost_usd": spend.cost_usd,
            "cpu_seconds": round(spend.cpu_seconds, 6),
            "model_requests": spend.model_requests,
            "runs": spend.runs,
        }


class UserSpend(SpendOut):
    user: str


class TaskSpend(SpendOut):
    task_id: str | None
    name: str | None


class BudgetOut(Answer):
    scope: Literal["user", "workspace"]
    unit: Literal["tokens", "usd", "cpu_seconds"]
    limit: float
    spent: float
    exceeded: bool


class Usage(Answer):
    """What was spent by the API's workspace, by user and task, and today's budgets."""

    since: datetime
    until: datetime
    total: SpendOut
    by_user: list[UserSpend]
    by_task: list[TaskSpend]
    budgets: list[BudgetOut]
    resets_at: datetime

    @classmethod
    def of(cls, report: UsageReport) -> Usage:
        return cls(
            since=report.since,
            until=report.until,
            total=SpendOut(**SpendOut.fields(report.total)),
            by_user=[UserSpend(user=u.key, **SpendOut.fields(u.spend)) for u in report.by_user],
            by_task=[
                TaskSpend(task_id=t.key or None, name=t.label or None, **SpendOut.fields(t.spend))
                for t in report.by_task
            ],
            budgets=[
                BudgetOut(
                    scope=b.scope,  # type: ignore[arg-type]
                    unit=b.unit,  # type: ignore[arg-type]
                    limit=b.limit,
                    spent=b.spent,
                    exceeded=b.exceeded,
                )
                for b in report.budgets
            ],
            resets_at=report.resets_at,
        )
