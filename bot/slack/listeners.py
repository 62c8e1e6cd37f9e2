"""Thin listeners, wired in one place: parse, ack, hand the slow half to ``SlackFlows``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from slack_bolt import Ack, App, Respond
from slack_sdk import WebClient

from bot.slack import blocks, commands
from bot.slack.flows import Origin, SlackFlows

logger = logging.getLogger(__name__)

IGNORED_SUBTYPES = frozenset(
    {
        "bot_message",
        "message_changed",
        "message_deleted",
        "message_replied",
        "channel_join",
        "channel_leave",
        "channel_topic",
        "channel_purpose",
        "channel_name",
        "thread_broadcast_deleted",
    }
)


def delivery_key(body: Mapping[str, Any]) -> tuple[str, str] | None:
    """A delivery's identity (kind, key): what a retry of it would carry again."""
    if body.get("type") == "event_callback" and body.get("event_id"):
        return "event", f"event:{body['event_id']}"
    if body.get("command") and body.get("trigger_id"):
        return "command", f"command:{body['trigger_id']}"
    if body.get("type") in ("block_actions", "view_submission") and body.get("trigger_id"):
        return str(body["type"]), f"{body['type']}:{body['trigger_id']}"
    return None


def _ephemeral(respond: Respond) -> Callable[[str], None]:
    def say(text: str) -> None:
        respond(text=text, response_type="ephemeral", replace_original=False)

    return say


def _ephemeral_blocks(respond: Respond) -> Callable[[blocks.Message], None]:
    def say(message: blocks.Message) -> None:
        respond(
            text=message.text,
            blocks=message.blocks,
            response_type="ephemeral",
            replace_original=False,
        )

    return say


def _in_thread(client: WebClient, origin: Origin, thread_ts: str | None) -> Callable[[str], None]:
    def say(text: str) -> None:
        client.chat_postEphemeral(
            channel=origin.channel_id, user=origin.user_id, text=text, thread_ts=thread_ts
        )

    return say


def _enterprise(body: Mapping[str, Any]) -> str | None:
    enterprise = body.get("enterprise_id") or (body.get("enterprise") or {}).get("id")
    return str(enterprise) if enterprise else None


def register_listeners(app: App, flows: SlackFlows) -> None:
    @app.command("/task")
    def on_task(ack: Ack, command: dict[str, Any], client: WebClient, respond: Respond) -> None:
        parsed = commands.parse(command.get("text", ""))
        if isinstance(parsed, commands.Help):
            text = f"{parsed.problem}\n\n{commands.USAGE}" if parsed.problem else commands.USAGE
            ack(response_type="ephemeral", text=text)
            return
        ack()
        origin = Origin(
            team_id=command.get("team_id", ""),
            enterprise_id=_enterprise(command),
            channel_id=command.get("channel_id", ""),
            user_id=command.get("user_id", ""),
        )
        say = _ephemeral(respond)
        if isinstance(parsed, commands.Create):
            description, task_type = parsed.description, parsed.task_type
            flows.submit(
                say,
                lambda: flows.create(
                    client, origin, description=description, task_type=task_type, say=say
                ),
                delivery=delivery_key(command),
            )
        elif isinstance(parsed, commands.RunCommand):
            trigger = command.get("trigger_id", "")
            run_ref, run_text = parsed.ref, parsed.text
            flows.submit(
                say,
                lambda: flows.run_command(
                    client, origin, ref=run_ref, text=run_text, trigger_id=trigger, say=say
                ),
                delivery=delivery_key(command),
            )
        elif isinstance(parsed, commands.Show):
            show = _ephemeral_blocks(respond)
            ref, version = parsed.ref, parsed.version
            flows.submit(
                say,
                lambda: flows.show(client, origin, ref=ref, version=version, say_blocks=show),
                delivery=delivery_key(command),
            )
        elif isinstance(parsed, commands.ListTasks):
            listing = _ephemeral_blocks(respond)
            flows.submit(
                say, lambda: flows.list_tasks(origin, listing), delivery=delivery_key(command)
            )

    @app.action(blocks.RUN_ACTION)
    def on_run_button(
        ack: Ack, body: dict[str, Any], action: dict[str, Any], client: WebClient, respond: Respond
    ) -> None:
        ack()
        origin = Origin(
            team_id=(body.get("team") or {}).get("id", ""),
            enterprise_id=_enterprise(body),
            channel_id=(body.get("channel") or {}).get("id", ""),
            user_id=(body.get("user") or {}).get("id", ""),
        )
        say = _ephemeral(respond)
        trigger = body.get("trigger_id", "")
        task_id = str(action.get("value", ""))
        flows.submit(
            say,
            lambda: flows.run_button(client, origin, task_id=task_id, trigger_id=trigger, say=say),
            delivery=delivery_key(body),
        )

    @app.view(blocks.RUN_MODAL)
    def on_run_modal(
        ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient
    ) -> None:
        values = view.get("state", {}).get("values", {})
        files = values.get(blocks.FILE_BLOCK, {}).get(blocks.FILE_ACTION, {}).get("files") or []
        if not files:
            ack(response_action="errors", errors={blocks.FILE_BLOCK: "Add at least one file."})
            return
        ack()
        metadata = view.get("private_metadata", "")
        channel = ""
        try:
            channel = str(json.loads(metadata or "{}").get("channel", ""))
        except ValueError:
            logger.warning("run modal with unreadable metadata")
        origin = Origin(
            team_id=(body.get("team") or {}).get("id", ""),
            enterprise_id=_enterprise(body),
            channel_id=channel,
            user_id=(body.get("user") or {}).get("id", ""),
        )
        say = _in_thread(client, origin, None)
        flows.submit(
            say,
            lambda: flows.run_modal(client, origin, metadata=metadata, files=files, say=say),
            delivery=delivery_key(body),
        )

    @app.event("message")
    def on_message(
        event: dict[str, Any], body: dict[str, Any], client: WebClient, context: dict[str, Any]
    ) -> None:
        if event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id") or event.get("hidden"):
            return
        user = event.get("user")
        if not user or user == context.get("bot_user_id"):
            return
        thread_ts = event.get("thread_ts")
        if not thread_ts or thread_ts == event.get("ts"):
            return  # only replies inside a thread concern a task
        origin = Origin(
            team_id=str(body.get("team_id") or event.get("team") or ""),
            enterprise_id=_enterprise(body),
            channel_id=str(event.get("channel", "")),
            user_id=str(user),
        )
        say = _in_thread(client, origin, str(thread_ts))
        flows.submit(
            say,
            lambda: flows.thread_message(client, origin, event=event, say=say),
            delivery=delivery_key(body),
        )

    @app.event("app_mention")
    def on_mention(event: dict[str, Any], body: dict[str, Any], client: WebClient) -> None:
        if event.get("thread_ts") or event.get("bot_id"):
            return  # in a thread, the message listener handles it
        origin = Origin(
            team_id=str(body.get("team_id") or ""),
            enterprise_id=_enterprise(body),
            channel_id=str(event.get("channel", "")),
            user_id=str(event.get("user", "")),
        )
        say = _in_thread(client, origin, None)
        flows.submit(say, lambda: say(commands.USAGE), delivery=delivery_key(body))

    @app.error
    def on_error(error: Exception, body: dict[str, Any]) -> None:
        logger.error("unhandled error in a Slack listener: %r (type %s)", error, body.get("type"))
