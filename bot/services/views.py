"""What services return: frozen, plain values, never ORM objects or Slack payloads."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from bot.services.checks import Check, CheckResult
from storage.kinds import RequestKind, RunStatus, TaskState, TaskType, VersionState

if TYPE_CHECKING:  # views are read without the ORM (the web edge's listeners)
    from sqlalchemy import Row

    from storage.models import Run, Task, TaskVersion


def money(cost_usd: float | None) -> str:
    """A money estimate as shown: "$0.0004", "$1.25", or "cost unknown"."""
    if cost_usd is None:
        return "cost unknown"
    if cost_usd >= 1:
        return f"${cost_usd:,.2f}"
    return f"${cost_usd:.4f}" if cost_usd >= 0.01 or cost_usd == 0 else f"${cost_usd:.6f}"


@dataclass(frozen=True)
class Workspace:
    """Where a request came from: a Slack team (and enterprise), or the local terminal/API."""

    team_id: str = ""
    enterprise_id: str | None = None


@dataclass(frozen=True)
class TaskView:
    id: str
    team_id: str
    enterprise_id: str | None
    channel_id: str | None
    thread_ts: str | None
    creator: str
    source: str
    desired_action: str
    task_type: TaskType
    state: TaskState
    state_detail: str | None
    name: str | None
    current_version: int | None
    created_at: datetime
    updated_at: datetime
    pinned_version: int | None = None  # what scheduled, workflow and MCP runs use

    @property
    def trigger_version(self) -> int | None:
        """The version a run nobody typed uses: the pinned one, else the current one."""
        return self.pinned_version if self.pinned_version is not None else self.current_version

    @classmethod
    def of(cls, task: Task | Row[Any]) -> TaskView:
        """From the ORM object or a Core row of the task's columns."""
        return cls(
            id=task.id,
            team_id=task.team_id,
            enterprise_id=task.enterprise_id,
            channel_id=task.channel_id,
            thread_ts=task.thread_ts,
            creator=task.creator,
            source=task.source,
            desired_action=task.desired_action,
            task_type=TaskType(task.task_type),
            state=TaskState(task.state),
            state_detail=task.state_detail,
            name=task.name,
            current_version=task.current_version,
            created_at=task.created_at,
            updated_at=task.updated_at,
            pinned_version=task.pinned_version,
        )


@dataclass(frozen=True)
class ReplacedCheck:
    """An earlier version's check the model said this version no longer keeps, and why."""

    name: str
    reason: str


def _stored(rows: Any) -> list[Mapping[str, Any]]:
    """The dicts of a stored JSON list of checks (anything else in it is left out)."""
    return [r for r in rows or () if isinstance(r, Mapping)]


def _error(value: Any) -> str | None:
    return None if value is None else str(value)


@dataclass(frozen=True)
class VersionView:
    task_id: str
    number: int
    code: str
    metadata: Mapping[str, Any]
    request_kind: RequestKind
    request_text: str
    requested_by: str
    change_summary: str | None
    model: str
    prompt_version: str
    input_tokens: int
    output_tokens: int
    model_requests: int
    created_at: datetime
    state: VersionState = VersionState.READY
    checks: tuple[Check, ...] = ()
    check_results: tuple[CheckResult, ...] = ()
    replaced_checks: tuple[ReplacedCheck, ...] = ()
    check_seconds: float | None = None
    check_cpu_seconds: float | None = None
    cost_usd: float | None = None  # None: the model's price is unknown
    response_mode: str | None = None

    @property
    def tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    @property
    def cost_line(self) -> str:
        """E.g. "gpt-4o-mini · 1 request · 1,234 tokens · $0.0004 · checks 0.02 CPU-s"."""
        return " · ".join(
            [
                self.model or "unknown model",
                f"{self.model_requests} request{'s' if self.model_requests != 1 else ''}",
                f"{self.tokens:,} tokens",
                money(self.cost_usd),
                f"checks {self.check_cpu_seconds or 0:.2f} CPU-s",
            ]
        )

    @property
    def checks_passed(self) -> int:
        return sum(1 for r in self.check_results if r.ok)

    @property
    def check_summary(self) -> str:
        """E.g. "3 checks passed", "1 of 3 checks failed: check_x", or "unchecked: ..."."""
        total = len(self.check_results)
        if not total:
            return "unchecked: the model wrote no usable checks"
        failed = [r.name for r in self.check_results if not r.ok]
        if not failed:
            return f"{total} check{'s' if total != 1 else ''} passed"
        return f"{len(failed)} of {total} checks failed: {', '.join(failed)}"

    @classmethod
    def of(cls, version: TaskVersion) -> VersionView:
        return cls(
            task_id=version.task_id,
            number=version.number,
            code=version.code,
            metadata=dict(version.meta),
            request_kind=RequestKind(version.request_kind),
            request_text=version.request_text,
            requested_by=version.requested_by,
            change_summary=version.change_summary,
            model=version.model,
            prompt_version=version.prompt_version,
            input_tokens=version.input_tokens,
            output_tokens=version.output_tokens,
            model_requests=version.model_requests,
            created_at=version.created_at,
            state=VersionState(version.state or VersionState.READY),
            checks=tuple(
                Check(str(c.get("name")), str(c.get("code") or "")) for c in _stored(version.checks)
            ),
            check_results=tuple(
                CheckResult(str(r.get("name")), bool(r.get("ok")), _error(r.get("error")))
                for r in _stored(version.check_results)
            ),
            replaced_checks=tuple(
                ReplacedCheck(str(r.get("name")), str(r.get("reason") or ""))
                for r in _stored(version.replaced_checks)
            ),
            check_seconds=version.check_seconds,
            check_cpu_seconds=version.check_cpu_seconds,
            cost_usd=version.cost_usd,
            response_mode=version.response_mode,
        )


@dataclass(frozen=True)
class TaskDetail:
    task: TaskView
    version: VersionView


@dataclass(frozen=True)
class RunTarget:
    """What requesting a run needs of its task: the task and the version to run."""

    task_id: str
    team_id: str
    channel_id: str | None
    task_type: TaskType
    version_number: int


@dataclass(frozen=True)
class TaskSummary:
    task: TaskView
    last_run_status: RunStatus | None

    @classmethod
    def of(cls, task: TaskView, last_run: Run | None) -> TaskSummary:
        return cls(task, RunStatus(last_run.status) if last_run is not None else None)


@dataclass(frozen=True)
class Refinement:
    task: TaskView
    version: VersionView
    previous: VersionView
    diff: str


def checks_listing(version: VersionView) -> str:
    """Every check's code, as one block of text."""
    outcomes = {r.name: r for r in version.check_results}
    parts = []
    for check in version.checks:
        outcome = outcomes.get(check.name)
        ok = outcome is not None and outcome.ok
        mark = "passed" if ok else f"FAILED: {outcome.error if outcome else None}"
        parts.append(f"# {check.name}: {mark}\n{check.code.rstrip()}")
    return "\n\n".join(parts)
