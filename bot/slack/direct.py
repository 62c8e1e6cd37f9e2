"""A file sent to Taskbot in its own DM (the app's Messages tab), with a task id in the text:
that task runs on the file, in its thread, and the DM gets a link to the result. The rule is
``/task run``'s from that DM: the task's creator may run it from anywhere."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import InvalidInput
from bot.slack.block_kit import escape_inline
from bot.slack.messages import Message
from bot.slack.posting import Say

if TYPE_CHECKING:
    from bot.slack.flows import SlackFlows

_TASK_REF = re.compile(r"\b([0-9a-fA-F][0-9a-fA-F-]{5,35})\b")


@dataclass(frozen=True, kw_only=True)
class DirectFile(Message):
    event: Mapping[str, Any]


def is_direct_file(event: Mapping[str, Any]) -> bool:
    """A top-level message with files in a 1:1 DM with the app."""
    return (
        event.get("channel_type") == "im"
        and bool(event.get("files"))
        and not event.get("thread_ts")
    )


def task_ref(text: str) -> str | None:
    match = _TASK_REF.search(text or "")
    return match.group(1) if match else None


def run_direct(flows: SlackFlows, client: WebClient, m: DirectFile, say: Say) -> None:
    flows.gate(m.origin)
    ref = task_ref(str(m.event.get("text") or ""))
    if ref is None:
        raise InvalidInput(
            "Which task should run on this file? Send it again with the task's id in the text "
            "(its first 6 characters are enough)."
        )
    task = flows.task_for(m.origin, ref)
    for file in m.event.get("files") or []:
        name, data = flows.files.download(client, file)
        flows.start_run(client, m.origin, task=task, data=data, name=name)
    link = None
    if task.channel_id and task.thread_ts:
        try:
            link = client.chat_getPermalink(channel=task.channel_id, message_ts=task.thread_ts).get(
                "permalink"
            )
        except SlackApiError:
            link = None
    where = f"<{link}|its thread>" if link else f"its thread in <#{task.channel_id}>"
    name = escape_inline(task.name or task.id[:8])
    client.chat_postMessage(
        channel=m.origin.channel_id,
        text=f"Running *{name}* on your file: the result is in {where}.",
    )


def handlers(flows: SlackFlows) -> dict[type[Message], Callable[[Any, WebClient, Say, Any], None]]:
    return {DirectFile: lambda m, client, say, _show: run_direct(flows, client, m, say)}
