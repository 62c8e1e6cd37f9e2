"""The Workflow Builder step "Run a Taskbot task": a Bolt ``function`` (manifest
``functions.run_task``) and the dynamic options of its task picker (``functions.task_options``).
The listeners only read the event and hand it on; the slow half completes the execution."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncApp, AsyncBoltContext

from bot.slack.messages import Dispatcher, Origin, Reply
from bot.slack.trigger_messages import TaskOptions, WorkflowStep

STEP = "run_task"
OPTIONS = "task_options"


def _text(value: Any) -> str | None:
    text = str(value).strip() if value is not None else ""
    return text or None


def _origin(context: AsyncBoltContext, run_as: str) -> Origin:
    """Where a step's work belongs: the workspace Bolt resolved, as the step's "run as" user
    (a workflow has no channel)."""
    return Origin(
        team_id=str(context.team_id or ""),
        enterprise_id=context.enterprise_id or None,
        channel_id="",
        user_id=run_as,
    )


def register_workflow_step(app: AsyncApp, dispatcher: Dispatcher) -> None:
    @app.function(STEP)
    async def on_step(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        inputs = event.get("inputs") or {}
        run_as = str(inputs.get("run_as") or "")
        origin = _origin(context, run_as)
        dispatcher.dispatch(
            WorkflowStep(
                execution_id=str(event.get("function_execution_id") or ""),
                workflow_token=str(event.get("bot_access_token") or ""),
                task_ref=str(inputs.get("task") or ""),
                run_as=run_as,
                file_id=_text(inputs.get("file")),
                text=_text(inputs.get("text")),
                origin=origin,
                reply=Reply(),
                delivery=("event", f"event:{body['event_id']}") if body.get("event_id") else None,
            )
        )

    @app.function(OPTIONS)
    async def on_options(
        body: dict[str, Any], event: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        inputs = event.get("inputs") or {}
        run_as = str(inputs.get("run_as") or "")
        origin = _origin(context, run_as)
        dispatcher.dispatch(
            TaskOptions(
                execution_id=str(event.get("function_execution_id") or ""),
                workflow_token=str(event.get("bot_access_token") or ""),
                run_as=run_as,
                origin=origin,
                reply=Reply(),
                delivery=("event", f"event:{body['event_id']}") if body.get("event_id") else None,
            )
        )
