"""The App Home tab: published when the viewer opens it and again, debounced, when one of
their tasks' runs changes; its Run and Show buttons.

What it lists is what the viewer could run with ``/task run``: their own tasks, and the tasks
of the channels they are in (``users.conversations``: public channels, and private ones the
bot shares with them), by the rule of ``bot.services.access``."""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import NotAllowed
from bot.services.reach import reachable
from bot.slack import blocks
from bot.slack.home_blocks import HOME_RUN_ACTION, HOME_SHOW_ACTION, home_view
from bot.slack.messages import Dispatcher, Message, Origin, Reply
from bot.slack.outcomes import Uninstalled
from bot.slack.posting import Say

if TYPE_CHECKING:
    from bot.slack.flows import SlackFlows
    from bot.slack.notifier import ClientSource

logger = logging.getLogger(__name__)

DEBOUNCE_SECONDS = 2.0
_CHANNEL_PAGES = 5


@dataclass(frozen=True, kw_only=True)
class HomeOpened(Message):
    pass


@dataclass(frozen=True, kw_only=True)
class HomeButton(Message):
    task_id: str
    trigger_id: str
    show: bool  # Show (a modal) or Run


def register(
    app: AsyncApp, dispatcher: Dispatcher, *, origin: Callable[..., Origin], delivery: Any
) -> None:
    @app.event("app_home_opened")
    async def on_home(
        event: dict[str, Any], body: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        if event.get("tab") != "home" or not event.get("user"):
            return
        where = origin(context, channel_id="")
        user = str(event["user"])
        dispatcher.dispatch(
            HomeOpened(
                origin=Origin(where.team_id, where.enterprise_id, "", user),
                reply=Reply(user_id=user),
                delivery=delivery(body),
            )
        )

    @app.action(HOME_RUN_ACTION)
    @app.action(HOME_SHOW_ACTION)
    async def on_home_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        where = origin(context, channel_id="")
        dispatcher.dispatch(
            HomeButton(
                task_id=str(action.get("value", "")),
                trigger_id=str(body.get("trigger_id", "")),
                show=action.get("action_id") == HOME_SHOW_ACTION,
                origin=where,
                reply=Reply(user_id=where.user_id),
                delivery=delivery(body),
            )
        )


def member_channels(client: WebClient, user_id: str) -> list[str]:
    """The channels ``user_id`` is in that the bot can see (public, and private shared)."""
    channels: list[str] = []
    cursor = ""
    for _ in range(_CHANNEL_PAGES):
        response = client.users_conversations(
            user=user_id,
            types="public_channel,private_channel",
            exclude_archived=True,
            limit=200,
            cursor=cursor or None,
        )
        channels += [str(c["id"]) for c in response.get("channels") or []]
        cursor = str((response.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            break
    return channels


def dm_sayer(client: WebClient, user_id: str) -> Say:
    """Answers to a Home tab press go to the app's Messages tab with the user."""

    def say(text: str) -> None:
        client.chat_postMessage(channel=user_id, text=text)

    return say


class HomeTab:
    """Publishes Home tabs; remembers who opened theirs, to refresh it when a run changes."""

    def __init__(self, flows: SlackFlows, clients: ClientSource) -> None:
        self.flows = flows
        self.clients = clients
        self._viewers: dict[str, tuple[str, str | None]] = {}  # user -> (team, enterprise)
        self._due: dict[str, threading.Timer] = {}
        self._lock = threading.Lock()
        # Run changes are told on the thread that recorded them: look them up on this one.
        self._lookups = ThreadPoolExecutor(max_workers=1, thread_name_prefix="taskbot-home")
        flows.services.signal.subscribe(self._run_changed)

    # --- publishing -------------------------------------------------------------------------

    def publish(self, client: WebClient, origin: Origin) -> None:
        with self._lock:
            self._viewers[origin.user_id] = (origin.team_id, origin.enterprise_id)
        channels = member_channels(client, origin.user_id)
        reach = self.flows.services.reach.home(
            team_id=origin.team_id, user_id=origin.user_id, channels=channels
        )
        client.views_publish(user_id=origin.user_id, view=home_view(reach))

    def _run_changed(self, run_id: str) -> None:
        with self._lock:
            if not self._viewers:
                return
        with contextlib.suppress(RuntimeError):  # shutting down
            self._lookups.submit(self._whose, run_id)

    def _whose(self, run_id: str) -> None:
        """Whose Home shows this run's task: refresh theirs, later."""
        try:
            run = self.flows.services.runs.get(run_id)
            task = self.flows.services.tasks.get(run.task_id)
        except Exception:
            logger.debug("run %s: no Home tab to refresh", run_id)
            return
        for user in {run.requested_by, task.creator}:
            self.refresh_later(user)

    def refresh_later(self, user_id: str) -> None:
        """Publish ``user_id``'s Home again in DEBOUNCE_SECONDS; changes until then join it."""
        with self._lock:
            where = self._viewers.get(user_id)
            if where is None or user_id in self._due:
                return
            timer = threading.Timer(DEBOUNCE_SECONDS, self._refresh, args=(user_id, *where))
            timer.daemon = True
            self._due[user_id] = timer
        timer.start()

    def _refresh(self, user_id: str, team_id: str, enterprise_id: str | None) -> None:
        with self._lock:
            self._due.pop(user_id, None)
        try:
            client = self.clients.for_team(team_id, enterprise_id)
            self.publish(client, Origin(team_id, enterprise_id, "", user_id))
        except (SlackApiError, Uninstalled) as exc:
            logger.warning("could not refresh the Home tab of %s: %s", user_id, exc)
        except Exception:
            logger.exception("could not refresh the Home tab of %s", user_id)

    def close(self) -> None:
        with self._lock:
            timers = list(self._due.values())
            self._due.clear()
        for timer in timers:
            timer.cancel()
        self._lookups.shutdown(wait=False, cancel_futures=True)

    # --- buttons ----------------------------------------------------------------------------

    def button(self, client: WebClient, m: HomeButton, say: Say) -> None:
        origin, services = m.origin, self.flows.services
        self.flows.gate(origin)
        task = services.tasks.get(m.task_id, team_id=origin.team_id)
        channels = member_channels(client, origin.user_id)
        if not reachable(task, team_id=origin.team_id, user_id=origin.user_id, channels=channels):
            raise NotAllowed(
                f"Task `{task.id[:8]}` belongs to <#{task.channel_id}>: join it to use the task, "
                f"or ask <@{task.creator}>."
            )
        # From Home, the task's own channel is where the viewer is a member (or its creator).
        where = task.channel_id if task.channel_id in channels else ""
        here = Origin(origin.team_id, origin.enterprise_id, where or "", origin.user_id)
        if not m.show:
            self.flows.run_button(client, here, task_id=task.id, trigger_id=m.trigger_id, say=say)
            return
        detail = services.tasks.show(task.id, team_id=origin.team_id)
        shown = blocks.task_show(detail, permalink=None)
        client.views_open(
            trigger_id=m.trigger_id,
            view={
                "type": "modal",
                "title": {"type": "plain_text", "text": "Task"},
                "close": {"type": "plain_text", "text": "Close"},
                "private_metadata": json.dumps({"task": task.id}),
                "blocks": shown.blocks[:100],
            },
        )

    def handlers(self) -> dict[type[Message], Callable[[Any, WebClient, Say, Any], None]]:
        return {
            HomeOpened: lambda m, client, _say, _show: self.publish(client, m.origin),
            HomeButton: lambda m, client, _say, _show: self.button(
                client, m, dm_sayer(client, m.origin.user_id)
            ),
        }
