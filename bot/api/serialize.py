"""Service views -> JSON-ready dicts. The shapes here are the ones ``openapi.py`` documents."""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.services.outcomes import load_json_result
from bot.services.runs import RunView
from bot.services.tables import as_table
from bot.services.usage import Spend, UsageReport
from bot.services.views import Refinement, TaskDetail, TaskSummary, TaskView, VersionView

FILE_INLINE_LIMIT = 1024 * 1024
"""Output files up to this size carry their content (base64); larger ones only name and size."""


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def task_summary(task: TaskView) -> dict[str, Any]:
    return {
        "id": task.id,
        "name": task.name,
        "desired_action": task.desired_action,
        "task_type": task.task_type,
        "state": task.state,
        "state_detail": task.state_detail,
        "current_version": task.current_version,
        "source": task.source,
        "created_at": _time(task.created_at),
        "updated_at": _time(task.updated_at),
    }


def checks(view: VersionView) -> dict[str, Any]:
    """The version's self-checks: counts, a one-line summary, and each check with its outcome."""
    outcomes = {str(r.get("name")): r for r in view.check_results}
    return {
        "passed": view.checks_passed,
        "total": len(view.check_results),
        "summary": view.check_summary,
        "items": [
            {
                "name": str(c.get("name")),
                "code": str(c.get("code")),
                "ok": bool(outcomes.get(str(c.get("name")), {}).get("ok")),
                "error": outcomes.get(str(c.get("name")), {}).get("error"),
            }
            for c in view.checks
        ],
        "replaced": [dict(r) for r in view.replaced_checks],
    }


def cost(view: VersionView) -> dict[str, Any]:
    """What a version cost, and who made it: model, prompt version, the response format the
    server accepted, requests, tokens, the checks' sandbox CPU and a money estimate."""
    return {
        "model": view.model,
        "prompt_version": view.prompt_version,
        "response_format": view.response_mode,
        "model_requests": view.model_requests,
        "input_tokens": view.input_tokens,
        "output_tokens": view.output_tokens,
        "tokens": view.tokens,
        "check_cpu_seconds": view.check_cpu_seconds,
        "cost_usd": view.cost_usd,
    }


def _spend(spend: Spend) -> dict[str, Any]:
    return {
        "tokens": spend.tokens,
        "cost_usd": spend.cost_usd,
        "cpu_seconds": round(spend.cpu_seconds, 6),
        "model_requests": spend.model_requests,
        "runs": spend.runs,
    }


def usage(report: UsageReport) -> dict[str, Any]:
    return {
        "since": _time(report.since),
        "until": _time(report.until),
        "total": _spend(report.total),
        "by_user": [{"user": line.key, **_spend(line.spend)} for line in report.by_user],
        "by_task": [
            {"task_id": line.key or None, "name": line.label or None, **_spend(line.spend)}
            for line in report.by_task
        ],
        "budgets": [
            {
                "scope": b.scope,
                "unit": b.unit,
                "limit": b.limit,
                "spent": b.spent,
                "exceeded": b.exceeded,
            }
            for b in report.budgets
        ],
        "resets_at": _time(report.resets_at),
    }


def task_detail(detail: TaskDetail) -> dict[str, Any]:
    """The seed's create answer (id, version, name, task_type, state, metadata, code, created_at)
    plus the task's description and the version's provenance."""
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
        "checks": checks(version),
        "cost": cost(version),
        "created_at": _time(task.created_at),
        "version_created_at": _time(version.created_at),
    }


def refinement(result: Refinement) -> dict[str, Any]:
    body = task_detail(TaskDetail(result.task, result.version))
    body["previous_version"] = result.previous.number
    body["diff"] = result.diff
    return body


def version(view: VersionView) -> dict[str, Any]:
    return {
        "version": view.number,
        "request_kind": view.request_kind,
        "request_text": view.request_text,
        "requested_by": view.requested_by,
        "change_summary": view.change_summary,
        "name": view.metadata.get("name"),
        "title": view.metadata.get("title"),
        "summary": view.metadata.get("summary"),
        "model": view.model,
        "prompt_version": view.prompt_version,
        "input_tokens": view.input_tokens,
        "output_tokens": view.output_tokens,
        "state": view.state,
        "checks": checks(view),
        "cost": cost(view),
        "created_at": _time(view.created_at),
    }


def versions(task_id: str, views: Sequence[VersionView]) -> dict[str, Any]:
    return {"task_id": task_id, "versions": [version(v) for v in views]}


def task_list(summaries: Sequence[TaskSummary]) -> dict[str, Any]:
    return {
        "tasks": [{**task_summary(s.task), "last_run_status": s.last_run_status} for s in summaries]
    }


def run_link(run_id: str) -> dict[str, str]:
    return {"run": f"/api/run/{run_id}"}


def run_accepted(view: RunView) -> dict[str, Any]:
    return {
        "run_id": view.id,
        "status": view.status,
        "task_id": view.task_id,
        "version": view.version_number,
        "links": run_link(view.id),
    }


def _result(view: RunView) -> tuple[str | None, Any]:
    """(encoding, value): ``json`` -> the JSON value, ``text`` -> a string, ``base64`` -> bytes.

    A stored JSON result that does not parse (cut at the output limit, too deep, stored by an
    older version) is returned as text; NaN and Infinity become null."""
    data = view.result
    if data is None or view.result_kind in (None, "none"):
        return None, None
    if view.result_kind == "json":
        ok, value = load_json_result(data)
        return ("json", value) if ok else ("text", data.decode("utf-8", "replace"))
    if view.result_kind == "text":
        return "text", data.decode("utf-8", "replace")
    return "base64", base64.b64encode(data).decode("ascii")


def _table(value: Any) -> dict[str, Any] | None:
    table = as_table(value)
    if table is None:
        return None
    return {"columns": list(table.columns), "numeric": list(table.numeric), "rows": len(table.rows)}


def run(view: RunView) -> dict[str, Any]:
    encoding, value = _result(view)
    files = []
    for f in view.files:
        inline = f.size <= FILE_INLINE_LIMIT
        files.append(
            {
                "name": f.name,
                "size": f.size,
                "content_base64": base64.b64encode(f.content).decode("ascii") if inline else None,
                "content_omitted": not inline,
            }
        )
    return {
        "run_id": view.id,
        "task_id": view.task_id,
        "version": view.version_number,
        "status": view.status,
        "final": view.final,
        "requested_by": view.requested_by,
        "attempts": view.attempts,
        "queued_at": _time(view.queued_at),
        "started_at": _time(view.started_at),
        "finished_at": _time(view.finished_at),
        "duration_seconds": view.duration_seconds,
        "input": None
        if view.input_size is None
        else {"name": view.input_name, "size": view.input_size, "sha256": view.input_sha256},
        "result_kind": view.result_kind,
        "result_encoding": encoding,
        "result": value,
        "result_truncated": view.result_truncated,
        "table": _table(value if encoding == "json" else None),
        "stdout": view.stdout,
        "stderr": view.stderr,
        "failure": None
        if not (view.error_type or view.error_message or view.killed_reason)
        else {
            "type": view.error_type,
            "message": view.error_message,
            "traceback_tail": view.traceback_tail,
            "killed_reason": view.killed_reason,
        },
        "files": files,
        "links": run_link(view.id),
        "cpu_seconds": view.cpu_seconds,
    }
