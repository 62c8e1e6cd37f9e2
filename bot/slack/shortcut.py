"""The message shortcut "Run a Taskbot task": on any message with a file, pick a task you may
run (an external_select searched as you type, most recent first), and it runs on that file,
the result in the task's thread, a link back (ephemeral) where the file was.

"May run" is ``/task run``'s rule from the message's channel: that channel's tasks, and the
user's own from anywhere (``bot.services.reach``). The picker only offers those; the
submission is checked again in the slow half, so a forged task id is refused all the same."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import InvalidInput
from bot.services.views import TaskView
from bot.slack.block_kit import escape_inline
from bot.slack.blocks import notice
from bot.slack.messages import Dispatcher, Message, Origin, Reply
from bot.slack.posting import Say, post
from storage.kinds import TaskType

if TYPE_CHECKING:
    from bot.services.container import Services
    from bot.slack.flows import SlackFlows

logger = logging.getLogger(__name__)

SHORTCUT = "run_on_file"
MODAL = "shortcut_run"
PICK_BLOCK = "task"
PICK_ACTION = "task_pick"
MAX_FILES = 10
MAX_OPTIONS = 100  # Slack's limit for an external_select's options


@dataclass(frozen=True, kw_only=True)
class ShortcutOpened(Message):
    trigger_id: str
    message_ts: str
    file_ids: tuple[str, ...]


@dataclass(frozen=True, kw_only=True)
class ShortcutRun(Message):
    task_id: str
    message_ts: str
    file_ids: tuple[str, ...]


def _label(task: TaskView) -> str:
    name = task.name or task.desired_action
    return f"{name[:60]} ({task.id[:8]}, v{task.current_version})"[:75]


def picker_modal(*, metadata: str, file_names: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": MODAL,
        "private_metadata": metadata,
        "title": {"type": "plain_text", "text": "Run a Taskbot task"},
        "submit": {"type": "plain_text", "text": "Run"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"Run a task on {file_names}."[:3000]},
            },
            {
                "type": "input",
                "block_id": PICK_BLOCK,
                "label": {"type": "plain_text", "text": "Task"},
                "element": {
                    "type": "external_select",
                    "action_id": PICK_ACTION,
                    "min_query_length": 0,
                    "placeholder": {"type": "plain_text", "text": "Search your tasks"},
                },
            },
        ],
    }


def _metadata(view: Mapping[str, Any]) -> dict[str, Any]:
    try:
        value = json.loads(str(view.get("private_metadata") or "{}"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def register(
    app: AsyncApp,
    dispatcher: Dispatcher,
    *,
    origin: Callable[..., Origin],
    delivery: Any,
    services: Callable[[], Services],
) -> None:
    @app.shortcut(SHORTCUT)
    async def on_shortcut(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        await ack()
        message = body.get("message") or {}
        channel = str((body.get("channel") or {}).get("id") or "")
        files = [str(f.get("id")) for f in message.get("files") or [] if f.get("id")]
        dispatcher.dispatch(
            ShortcutOpened(
                trigger_id=str(body.get("trigger_id") or ""),
                message_ts=str(message.get("ts") or ""),
                file_ids=tuple(files[:MAX_FILES]),
                origin=origin(context, channel_id=channel),
                reply=Reply(response_url=body.get("response_url")),
                delivery=delivery(body),
            )
        )

    @app.options(PICK_ACTION)
    async def on_options(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext) -> None:
        meta = _metadata(body.get("view") or {})
        search = str(body.get("value") or "").strip()[:50]

        def reachable() -> list[TaskView]:  # on a thread: the database, the services built once
            return services().reach.tasks(
                team_id=str(context.team_id or ""),
                user_id=str(context.user_id or ""),
                channels=[str(meta.get("channel") or "")],
                search=search,
                limit=MAX_OPTIONS,
            )

        tasks = await asyncio.to_thread(reachable)
        options = [
            {"text": {"type": "plain_text", "text": _label(t)}, "value": t.id}
            for t in tasks
            if t.current_version and t.task_type is TaskType.PASSTHROUGH
        ]
        await ack(options=options)

    @app.view(MODAL)
    async def on_submit(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        values = view.get("state", {}).get("values", {})
        picked = (values.get(PICK_BLOCK, {}).get(PICK_ACTION, {}) or {}).get("selected_option")
        if not picked:
            await ack(response_action="errors", errors={PICK_BLOCK: "Pick a task."})
            return
        await ack()
        meta = _metadata(view)
        channel = str(meta.get("channel") or "")
        where = origin(context, channel_id=channel)
        dispatcher.dispatch(
            ShortcutRun(
                task_id=str(picked.get("value") or ""),
                message_ts=str(meta.get("ts") or ""),
                file_ids=tuple(str(f) for f in meta.get("files") or [])[:MAX_FILES],
                origin=where,
                reply=Reply(channel_id=channel, user_id=where.user_id),
                delivery=delivery(body),
            )
        )


def opened(flows: SlackFlows, client: WebClient, m: ShortcutOpened, say: Say) -> None:
    flows.gate(m.origin)
    if not m.file_ids:
        raise InvalidInput("That message has no file. Use the shortcut on a message with a file.")
    names = []
    for file_id in m.file_ids:
        try:
            info = client.files_info(file=file_id).get("file") or {}
            names.append(f"`{escape_inline(str(info.get('name') or file_id))}`")
        except SlackApiError:
            names.append(f"`{file_id}`")
    metadata = json.dumps(
        {"channel": m.origin.channel_id, "ts": m.message_ts, "files": list(m.file_ids)}
    )
    client.views_open(
        trigger_id=m.trigger_id, view=picker_modal(metadata=metadata, file_names=", ".join(names))
    )


def run(flows: SlackFlows, client: WebClient, m: ShortcutRun, say: Say) -> None:
    flows.gate(m.origin)
    task = flows.task_for(m.origin, m.task_id)  # the /task run rule, from the file's channel
    if task.current_version is None:
        raise InvalidInput(f"Task `{task.id[:8]}` has no working version yet.")
    if not task.channel_id or not task.thread_ts:
        raise InvalidInput(f"Task `{task.id[:8]}` has no Slack thread to run in.")
    source = _permalink(client, m.origin.channel_id, m.message_ts)
    from_where = f"<{source}|a message in <#{m.origin.channel_id}>>" if source else "a message"
    post(
        client,
        task.channel_id,
        notice(f"<@{m.origin.user_id}> runs this on the file of {from_where}."),
        task.thread_ts,
    )
    for file_id in m.file_ids:
        name, data = flows.files.download(client, {"id": file_id})
        flows.start_run(client, m.origin, task=task, data=data, name=name)
    thread = _permalink(client, task.channel_id, task.thread_ts)
    link = f"<{thread}|its thread>" if thread else f"its thread in <#{task.channel_id}>"
    name = escape_inline(task.name or task.id[:8])
    say(f"Running *{name}* on this file: the result is in {link}.")


def _permalink(client: WebClient, channel: str, ts: str) -> str | None:
    if not channel or not ts:
        return None
    try:
        return str(client.chat_getPermalink(channel=channel, message_ts=ts).get("permalink") or "")
    except SlackApiError:
        logger.warning("no permalink for %s/%s", channel, ts)
        return None


def handlers(flows: SlackFlows) -> dict[type[Message], Callable[[Any, WebClient, Say, Any], None]]:
    return {
        ShortcutOpened: lambda m, client, say, _show: opened(flows, client, m, say),
        ShortcutRun: lambda m, client, say, _show: run(flows, client, m, say),
    }
