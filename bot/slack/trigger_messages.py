"""Typed messages for the triggers that run a task without anyone typing (issue 18):
schedules, pins and the Workflow Builder step. Plain values, so they cross the pipe."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.slack.messages import Message
from bot.slack.trigger_commands import Schedule, Schedules, TriggerCommand, Unschedule


@dataclass(frozen=True, kw_only=True)
class ScheduleTask(Message):
    ref: str
    when: str


@dataclass(frozen=True, kw_only=True)
class ListSchedules(Message):
    pass


@dataclass(frozen=True, kw_only=True)
class UnscheduleTask(Message):
    ref: str


@dataclass(frozen=True, kw_only=True)
class PinVersion(Message):
    ref: str
    version: int | None  # None: unpin


@dataclass(frozen=True, kw_only=True)
class WorkflowStep(Message):
    """A ``function_executed`` event for the "Run a Taskbot task" step."""

    execution_id: str
    workflow_token: str  # the event's bot_access_token: completes this execution only
    task_ref: str
    run_as: str
    file_id: str | None
    text: str | None


@dataclass(frozen=True, kw_only=True)
class TaskOptions(Message):
    """The step's dynamic options: the tasks ``run_as`` may run, for its task picker."""

    execution_id: str
    workflow_token: str
    run_as: str


def message_for(parsed: TriggerCommand, **base: Any) -> Message:
    """The message a parsed trigger command becomes (``base``: origin, reply, delivery)."""
    if isinstance(parsed, Schedule):
        return ScheduleTask(ref=parsed.ref, when=parsed.when, **base)
    if isinstance(parsed, Schedules):
        return ListSchedules(**base)
    if isinstance(parsed, Unschedule):
        return UnscheduleTask(ref=parsed.ref, **base)
    return PinVersion(ref=parsed.ref, version=parsed.version, **base)
