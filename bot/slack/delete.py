"""``/task delete <id>``: an ephemeral question with a Delete button (and Slack's own confirm
dialog); only the task's creator is offered it, and only the creator's click deletes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import NotAllowed
from bot.services.views import TaskView
from bot.slack.block_kit import Message, escape_mrkdwn, section

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.slack.flows import SlackFlows
    from bot.slack.messages import Origin
    from bot.slack.posting import Say

logger = logging.getLogger(__name__)

DELETE_ACTION = "delete_task"
NOT_CREATOR = "Only the person who created this task can delete it."


def _label(task: TaskView) -> str:
    return f"*{escape_mrkdwn(task.name or task.desired_action[:60])}* (`{task.id[:8]}`)"


def delete_question(task: TaskView) -> Message:
    versions = task.current_version or 0
    text = (
        f"Delete task {_label(task)} with its {versions} version(s), its runs and their files? "
        "This cannot be undone."
    )
    button: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": "Delete"},
        "style": "danger",
        "action_id": DELETE_ACTION,
        "value": task.id,
        "confirm": {
            "title": {"type": "plain_text", "text": "Delete this task?"},
            "text": {"type": "plain_text", "text": "Its versions and runs go with it."},
            "confirm": {"type": "plain_text", "text": "Delete"},
            "deny": {"type": "plain_text", "text": "Keep it"},
            "style": "danger",
        },
    }
    return Message(
        f"Delete task {task.id[:8]}?", [section(text), {"type": "actions", "elements": [button]}]
    )


def task_deleted(task: TaskView, *, user_id: str) -> Message:
    text = f"Task {_label(task)} was deleted by <@{user_id}>."
    return Message(f"Task {task.id[:8]} was deleted.", [section(text)])


def ask(
    flows: SlackFlows, origin: Origin, *, ref: str, say_blocks: Callable[[Message], None]
) -> None:
    flows.gate(origin)
    task = flows.task_for(origin, ref)
    if task.creator != origin.user_id:
        raise NotAllowed(NOT_CREATOR)
    say_blocks(delete_question(task))


def delete(flows: SlackFlows, client: WebClient, origin: Origin, *, task_id: str, say: Say) -> None:
    flows.gate(origin)
    task = flows.task_for(origin, task_id)
    flows.services.housekeeping.delete(task.id, requested_by=origin.user_id, team_id=origin.team_id)
    if task.channel_id and task.thread_ts:
        gone = task_deleted(task, user_id=origin.user_id)
        try:
            client.chat_update(
                channel=task.channel_id, ts=task.thread_ts, text=gone.text, blocks=gone.blocks
            )
        except SlackApiError:
            # The root message may be gone already; the task is deleted either way.
            logger.exception("could not mark the root message of deleted task %s", task.id)
    say(f"Deleted task {task.id[:8]}.")
