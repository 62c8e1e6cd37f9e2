"""The slow halves of issue 18's triggers: schedules, pins and the Workflow Builder step.
Every run they start is an ordinary run (``SlackFlows.start_run``) of the task's pinned
version, or its current one: same access rules, budgets and thread as any run."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.access import check_gate
from bot.services.errors import InvalidInput, NotAllowed, ServiceError
from bot.services.runs import RunView
from bot.services.schedules import ScheduleView
from bot.services.views import TaskView
from bot.slack import blocks
from bot.slack.flows import SlackFlows
from bot.slack.keepalive import KeepAliveWebClient
from bot.slack.messages import Message, Origin
from bot.slack.posting import Say, update
from bot.slack.tracked import TrackedPool
from bot.slack.trigger_messages import (
    ListSchedules,
    PinVersion,
    ScheduleTask,
    TaskOptions,
    UnscheduleTask,
    WorkflowStep,
)
from storage.kinds import ResultKind, RunStatus, TaskType

logger = logging.getLogger(__name__)

SayBlocks = Callable[[blocks.Message], None]
Handler = Callable[[Any, WebClient, Say, SayBlocks], None]
RESULT_OUTPUT_LIMIT = 500  # characters of the result a workflow step hands on
STEP_WAIT_GRACE = 120.0  # seconds past the sandbox's wall limit the step waits for its run


def version_note(task: TaskView) -> str:
    if task.pinned_version is not None:
        return f"v{task.pinned_version} (pinned)"
    return f"v{task.current_version} (current)"


def result_text(run: RunView) -> str:
    """A short, escaped line of what a run produced or why it failed."""
    if run.status is not RunStatus.SUCCEEDED:
        reason = f"{run.error_type or run.status.value}: {run.error_message or ''}".strip(": ")
        return blocks.escape_inline(reason)[:RESULT_OUTPUT_LIMIT]
    if run.result is None or run.result_kind in (None, ResultKind.NONE):
        return "(no result)"
    if run.result_kind is ResultKind.BYTES:
        return f"({len(run.result)} bytes)"
    text = run.result.decode("utf-8", "replace")
    return blocks.escape_mrkdwn(text)[:RESULT_OUTPUT_LIMIT]


class TriggerFlows:
    def __init__(self, flows: SlackFlows) -> None:
        self.flows = flows
        # Steps waiting on their run: a pool of their own, so they hold up neither first
        # replies (flows.workers) nor the model's turns (flows.generators).
        self._step_waits = TrackedPool(max_workers=8, thread_name_prefix="taskbot-step")
        self.services = flows.services

    def handlers(self) -> dict[type[Message], Handler]:
        return {
            ScheduleTask: self.schedule,
            ListSchedules: self.list_schedules,
            UnscheduleTask: self.unschedule,
            PinVersion: self.pin,
            WorkflowStep: self.workflow_step,
            TaskOptions: self.task_options,
        }

    # --- schedules --------------------------------------------------------------------------

    def schedule(self, m: ScheduleTask, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.gate(m.origin)
        task = self.flows.task_for(m.origin, m.ref)
        if not task.channel_id or not task.thread_ts:
            raise InvalidInput(f"Task `{task.id[:8]}` has no Slack thread to post its runs in.")
        person: Mapping[str, Any] = client.users_info(user=m.origin.user_id).get("user") or {}
        tz = str(person.get("tz") or "UTC")
        name, data = None, None
        if task.task_type is TaskType.PASSTHROUGH:
            name, data = self._newest_thread_file(client, task)
        view = self.services.schedules.create(
            task,
            when=m.when,
            timezone=tz,
            owner=m.origin.user_id,
            input_name=name,
            input_data=data,
        )
        on = f" on `{blocks.escape_inline(name)}`" if name else ""
        say(
            f"Scheduled task `{task.id[:8]}` {view.words}{on}, running {version_note(task)}; "
            f"next run {_local(view)}. Results go to its thread. "
            f"`/task unschedule {task.id[:8]}` stops it."
        )

    def _newest_thread_file(self, client: WebClient, task: TaskView) -> tuple[str, bytes]:
        assert task.channel_id and task.thread_ts
        found: Mapping[str, Any] | None = None
        cursor: str | None = None
        while True:
            page = client.conversations_replies(
                channel=task.channel_id, ts=task.thread_ts, limit=200, cursor=cursor
            )
            for message in page.get("messages") or []:
                files = [f for f in message.get("files") or [] if f.get("mode") != "tombstone"]
                if files and not message.get("bot_id"):
                    found = files[-1]
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if not cursor:
                break
        if found is None:
            raise InvalidInput(
                f"Task `{task.id[:8]}` needs an input file: drop one into its thread first; "
                "the schedule runs it on the newest file there (as it was when you scheduled)."
            )
        return self.flows.files.download(client, found)

    def list_schedules(self, m: ListSchedules, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.gate(m.origin)
        mine = self.services.schedules.of_team(team_id=m.origin.team_id, owner=m.origin.user_id)
        if not mine:
            say("You have no schedules. `/task schedule <id> <when>` makes one.")
            return
        lines = []
        for s in mine:
            state = f"paused after {s.failures} failed runs" if s.paused else f"next {_local(s)}"
            lines.append(f"• task `{s.task_id[:8]}`: {s.words}, {state}")
        say("Your schedules:\n" + "\n".join(lines))

    def unschedule(self, m: UnscheduleTask, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.gate(m.origin)
        removed = self.services.schedules.remove(
            m.ref, team_id=m.origin.team_id, user_id=m.origin.user_id
        )
        words = "; ".join(s.words for s in removed)
        say(f"Removed {len(removed)} schedule(s) of task `{removed[0].task_id[:8]}`: {words}.")

    # --- pins -------------------------------------------------------------------------------

    def pin(self, m: PinVersion, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.gate(m.origin)
        task = self.flows.task_for(m.origin, m.ref)
        pins = self.services.pins
        if m.version is None:
            task = pins.unpin(task.id, team_id=m.origin.team_id)
            note = (
                f":pushpin: Unpinned by <@{m.origin.user_id}>: scheduled, workflow and MCP runs "
                f"use the current version (v{task.current_version})."
            )
        else:
            task = pins.pin(task.id, version=m.version, team_id=m.origin.team_id)
            note = (
                f":pushpin: v{m.version} pinned by <@{m.origin.user_id}>: scheduled, workflow "
                f"and MCP runs use it, whatever the current version. `/task unpin "
                f"{task.id[:8]}` undoes it."
            )
        if task.channel_id and task.thread_ts:
            client.chat_postMessage(channel=task.channel_id, thread_ts=task.thread_ts, text=note)
            detail = self.services.tasks.show(task.id, team_id=m.origin.team_id)
            update(client, task.channel_id, task.thread_ts, blocks.task_ready(detail))
        say(note)

    # --- the Workflow Builder step ------------------------------------------------------------

    def _workflow_client(self, client: WebClient, token: str) -> WebClient:
        """The execution's own token completes it (Slack refuses the bot token there)."""
        return KeepAliveWebClient(
            token=token, base_url=client.base_url, retry_handlers=client.retry_handlers
        )

    def workflow_step(self, m: WorkflowStep, client: WebClient, say: Say, _: SayBlocks) -> None:
        """Start the run here (quick); wait for it and complete the step on the slow pool, so
        waiting workflows never hold up first replies."""
        done = self._workflow_client(client, m.workflow_token)
        try:
            task, run_id, ts = self._start_step(m, client)
        except Exception as exc:
            self._step_failed(done, m.execution_id, exc)
            return

        def finish() -> None:
            try:
                outputs = self._step_outputs(client, task=task, run_id=run_id, ts=ts)
            except Exception as exc:
                self._step_failed(done, m.execution_id, exc)
                return
            self._complete(done, m.execution_id, outputs)

        self._step_waits.submit(finish)  # finish reports its own failures to the step

    def _step_failed(self, done: WebClient, execution_id: str, exc: Exception) -> None:
        if isinstance(exc, ServiceError):
            done.functions_completeError(function_execution_id=execution_id, error=str(exc))
            return
        logger.error("the workflow step failed", exc_info=exc)
        done.functions_completeError(
            function_execution_id=execution_id,
            error="Taskbot failed on its side; it is logged. Try again in a moment.",
        )

    def _complete(self, done: WebClient, execution_id: str, outputs: dict[str, str]) -> None:
        if outputs["status"] != RunStatus.SUCCEEDED.value:
            done.functions_completeError(
                function_execution_id=execution_id,
                error=f"The task's run {outputs['status']}: {outputs['result']} "
                f"({outputs['run_link']})",
            )
            return
        done.functions_completeSuccess(function_execution_id=execution_id, outputs=outputs)

    def _start_step(self, m: WorkflowStep, client: WebClient) -> tuple[TaskView, str, str]:
        if not m.run_as:
            raise InvalidInput("The step needs a person to run the task as (its Run as input).")
        if not m.task_ref:
            raise InvalidInput("Pick the task to run in the step's Task input.")
        task = self._runnable(m.origin, m.task_ref)
        version = task.trigger_version
        if version is None:
            raise InvalidInput(f"Task `{task.id[:8]}` has no working version yet.")
        name, data = None, None
        if task.task_type is TaskType.PASSTHROUGH:
            if m.file_id:
                name, data = self.flows.files.download(client, {"id": m.file_id})
            elif m.text:
                name, data = "input.txt", m.text.encode("utf-8")
            else:
                raise InvalidInput(f"Task `{task.id[:8]}` needs a file or a text as its input.")
        origin = Origin(m.origin.team_id, m.origin.enterprise_id, task.channel_id or "", m.run_as)
        run_id, ts = self.flows.start_run(
            client, origin, task=task, data=data, name=name, version=version
        )
        return task, run_id, ts

    def _step_outputs(
        self, client: WebClient, *, task: TaskView, run_id: str, ts: str
    ) -> dict[str, str]:
        runs = self.services.runs
        wall = self.services.settings.sandbox_wall_seconds
        run = runs.wait(run_id, timeout=wall + STEP_WAIT_GRACE)
        if not run.final:
            raise InvalidInput(f"The run of task `{task.id[:8]}` did not finish in time.")
        link = ""
        try:
            link = str(
                client.chat_getPermalink(channel=task.channel_id or "", message_ts=ts).get(
                    "permalink"
                )
                or ""
            )
        except SlackApiError:
            logger.warning("no permalink for run %s", run_id)
        return {"status": run.status.value, "result": result_text(run), "run_link": link}

    def _runnable(self, origin: Origin, ref: str) -> TaskView:
        """A workflow has no channel: the person it runs as must be allowed by the operator's
        lists and may run only the tasks they created (or channel-less ones)."""
        check_gate(
            channel_id=origin.channel_id,
            user_id=origin.user_id,
            allowed_channels=(),
            allowed_users=self.flows.allowed_users,
        )
        task = self.services.tasks.get(ref, team_id=origin.team_id)
        if task.channel_id is not None and task.creator != origin.user_id:
            raise NotAllowed(
                f"Task `{task.id[:8]}` belongs to <#{task.channel_id}>: only its creator "
                f"<@{task.creator}> can run it from a workflow."
            )
        return task

    def task_options(self, m: TaskOptions, client: WebClient, say: Say, _: SayBlocks) -> None:
        done = self._workflow_client(client, m.workflow_token)
        summaries = self.services.tasks.list(team_id=m.origin.team_id, limit=100)
        options = [
            {
                "text": {
                    "type": "plain_text",
                    "text": f"{s.task.name or 'task'} ({s.task.id[:8]})"[:75],
                },
                "value": s.task.id,
            }
            for s in summaries
            if s.task.trigger_version is not None
            and (s.task.channel_id is None or s.task.creator == m.run_as)
        ]
        done.functions_completeSuccess(
            function_execution_id=m.execution_id, outputs={"options": options}
        )


def _log(text: str) -> None:
    logger.warning("workflow step: %s", text)


def _local(view: ScheduleView) -> str:
    when = view.next_at.astimezone(ZoneInfo(view.timezone))
    return when.strftime("%a %d %b %H:%M ") + view.timezone
