"""Thin listeners, wired in one place: parse, ack, hand the slow half to ``SlackFlows``."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext

from bot.slack import commands, direct, home, shortcut, stop
from bot.slack import messages as m
from bot.slack.actions import FILE_ACTION, FILE_BLOCK, RUN_ACTION, RUN_MODAL
from bot.slack.delete import DELETE_ACTION
from bot.slack.messages import Dispatcher, Origin, Reply
from bot.slack.token_commands import TokenCommand, to_message
from bot.slack.trigger_commands import Pin, Schedule, Schedules, Unschedule
from bot.slack.trigger_messages import message_for
from bot.slack.workflow_step import register_workflow_step

if TYPE_CHECKING:
    from bot.services.container import Services

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


def _origin(context: AsyncBoltContext, *, channel_id: str) -> Origin:
    """The workspace a request belongs to, as Bolt resolved it: the installation's team (for
    Slack Connect, ``authorizations[0]`` or ``view.app_installed_team_id``, not the outer
    ``team_id``) and enterprise (on Grid, ``team.enterprise_id`` in interactivity payloads)."""
    return Origin(
        team_id=str(context.team_id or ""),
        enterprise_id=context.enterprise_id or None,
        channel_id=channel_id,
        user_id=str(context.user_id or ""),
    )


def register_listeners(
    app: AsyncApp,
    dispatcher: Dispatcher,
    *,
    revocations: bool = False,
    services: Callable[[], Services] | None = None,
) -> None:
    """Every listener parses, acks and hands one typed message (``bot.slack.messages``) to the
    dispatcher; nothing else.

    With ``revocations`` (an installation store), Bolt's own listeners delete the installation
    on ``tokens_revoked`` and ``app_uninstalled``; either way the slow half is told, so work for
    that workspace stops."""

    @app.command("/task")
    async def on_task(ack: AsyncAck, command: dict[str, Any], context: AsyncBoltContext) -> None:
        parsed = commands.parse(command.get("text", ""))
        if isinstance(parsed, commands.Help):
            text = f"{parsed.problem}\n\n{commands.USAGE}" if parsed.problem else commands.USAGE
            await ack(response_type="ephemeral", text=text)
            return
        if isinstance(parsed, TokenCommand) and parsed.problem:
            await ack(response_type="ephemeral", text=parsed.problem)
            return
        await ack()
        origin = _origin(context, channel_id=command.get("channel_id", ""))
        reply = Reply(response_url=command.get("response_url"))
        base: dict[str, Any] = {"origin": origin, "reply": reply, "delivery": delivery_key(command)}
        message: m.Message
        if isinstance(parsed, commands.Create):
            direct = command.get("channel_name") == "directmessage"
            message = m.CreateTask(
                description=parsed.description, task_type=parsed.task_type, direct=direct, **base
            )
        elif isinstance(parsed, commands.RunCommand):
            trigger = command.get("trigger_id", "")
            message = m.RunCommand(ref=parsed.ref, text=parsed.text, trigger_id=trigger, **base)
        elif isinstance(parsed, commands.Show):
            message = m.ShowTask(ref=parsed.ref, version=parsed.version, **base)
        elif isinstance(parsed, commands.Delete):
            message = m.DeleteAsk(ref=parsed.ref, **base)
        elif isinstance(parsed, commands.Usage):
            message = m.Spend(days=parsed.days, **base)
        elif isinstance(parsed, Schedule | Schedules | Unschedule | Pin):
            message = message_for(parsed, **base)  # issue 18
        elif isinstance(parsed, TokenCommand):
            message = to_message(parsed, base)
        elif isinstance(parsed, commands.Stop):
            message = stop.StopCommand(ref=parsed.ref, **base)
        else:
            message = m.ListTasks(**base)
        dispatcher.dispatch(message)

    @app.action(RUN_ACTION)
    async def on_run_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        origin = _origin(context, channel_id=str(context.channel_id or ""))
        reply = Reply(response_url=body.get("response_url"))
        message = m.RunButton(
            task_id=str(action.get("value", "")),
            trigger_id=body.get("trigger_id", ""),
            origin=origin,
            reply=reply,
            delivery=delivery_key(body),
        )
        dispatcher.dispatch(message)

    @app.action(DELETE_ACTION)
    async def on_delete_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        origin = _origin(context, channel_id=str(context.channel_id or ""))
        reply = Reply(response_url=body.get("response_url"))
        message = m.DeleteTask(
            task_id=str(action.get("value", "")),
            origin=origin,
            reply=reply,
            delivery=delivery_key(body),
        )
        dispatcher.dispatch(message)

    @app.view(RUN_MODAL)
    async def on_run_modal(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        values = view.get("state", {}).get("values", {})
        files = values.get(FILE_BLOCK, {}).get(FILE_ACTION, {}).get("files") or []
        if not files:
            await ack(response_action="errors", errors={FILE_BLOCK: "Add at least one file."})
            return
        await ack()
        metadata = view.get("private_metadata", "")
        channel = ""
        try:
            channel = str(json.loads(metadata or "{}").get("channel", ""))
        except ValueError:
            logger.warning("run modal with unreadable metadata")
        origin = _origin(context, channel_id=channel)
        reply = Reply(channel_id=channel, user_id=origin.user_id)
        message = m.RunModal(
            metadata=metadata,
            files=tuple(files),
            origin=origin,
            reply=reply,
            delivery=delivery_key(body),
        )
        dispatcher.dispatch(message)

    @app.event("message")
    async def on_message(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("subtype") in IGNORED_SUBTYPES or event.get("bot_id") or event.get("hidden"):
            return
        user = event.get("user")
        if not user or user == context.get("bot_user_id"):
            return
        thread_ts = event.get("thread_ts")
        if direct.is_direct_file(event):  # a file in the app's DM, with a task id in the text
            origin = _origin(context, channel_id=str(event.get("channel", "")))
            reply = Reply(channel_id=origin.channel_id, user_id=origin.user_id)
            dispatcher.dispatch(
                direct.DirectFile(
                    event=event, origin=origin, reply=reply, delivery=delivery_key(body)
                )
            )
            return
        if not thread_ts or thread_ts == event.get("ts"):
            return  # only replies inside a thread concern a task
        origin = _origin(context, channel_id=str(event.get("channel", "")))
        reply = Reply(channel_id=origin.channel_id, user_id=origin.user_id, thread_ts=thread_ts)
        message = m.ThreadMessage(
            event=event, origin=origin, reply=reply, delivery=delivery_key(body)
        )
        dispatcher.dispatch(message)

    @app.event("app_mention")
    async def on_mention(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("thread_ts") or event.get("bot_id"):
            return  # in a thread, the message listener handles it
        origin = _origin(context, channel_id=str(event.get("channel", "")))
        reply = Reply(channel_id=origin.channel_id, user_id=origin.user_id)
        message = m.Usage(
            text=commands.USAGE, origin=origin, reply=reply, delivery=delivery_key(body)
        )
        dispatcher.dispatch(message)

    register_workflow_step(app, dispatcher)  # issue 18
    stop.register(app, dispatcher, origin=_origin, delivery=delivery_key)
    home.register(app, dispatcher, origin=_origin, delivery=delivery_key)
    if services is not None:  # the shortcut's task picker reads the tasks in the ack half
        shortcut.register(app, dispatcher, origin=_origin, delivery=delivery_key, services=services)

    tokens = app.default_tokens_revoked_event_listener() if revocations else None
    uninstalled = app.default_app_uninstalled_event_listener() if revocations else None

    @app.event("tokens_revoked")
    @app.event("app_uninstalled")
    async def on_revoked(
        body: dict[str, Any], context: AsyncBoltContext, event: dict[str, Any]
    ) -> None:
        origin = _origin(context, channel_id="")
        if event.get("type") == "tokens_revoked":
            if tokens is not None:
                await tokens(event=event, context=context)
            if not (event.get("tokens") or {}).get("bot"):
                return  # only user tokens went; the bot's still works
        elif uninstalled is not None:
            await uninstalled(context=context)
        logger.warning(
            "Slack says %s for team %s: its work stops", event.get("type"), origin.team_id
        )
        dispatcher.dispatch(m.Revoked(origin=origin, reply=Reply(), delivery=delivery_key(body)))

    @app.error
    async def on_error(error: Exception, body: dict[str, Any]) -> None:
        logger.error("unhandled error in a Slack listener: %r (type %s)", error, body.get("type"))
