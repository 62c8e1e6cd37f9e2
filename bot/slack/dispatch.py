"""The slow half's entry: each typed message (``bot.slack.messages``) to its flow, by type."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any

from slack_sdk import WebClient
from slack_sdk.webhook import WebhookClient

from bot.slack import blocks, delete, read_flows, stop, token_flows
from bot.slack.flows import SlackFlows
from bot.slack.messages import (
    CreateTask,
    DeleteAsk,
    DeleteTask,
    ListTasks,
    Message,
    Reply,
    RunButton,
    RunCommand,
    RunModal,
    ShowTask,
    Spend,
    ThreadMessage,
    Usage,
)
from bot.slack.posting import Say
from bot.slack.token_commands import IssueToken, ListTokens, RevokeToken, ShowAudit
from bot.slack.trigger_flows import TriggerFlows

SayBlocks = Callable[[blocks.Message], None]


class Handlers:
    """One method per message type; ``handle`` finds it by the message's class."""

    def __init__(
        self,
        flows: SlackFlows,
        extra: Mapping[type[Message], Callable[[Any, WebClient, Say, SayBlocks], None]] = {},
    ) -> None:
        self.flows = flows
        self._by_type: dict[type[Message], Callable[[Any, WebClient, Say, SayBlocks], None]] = {
            CreateTask: self.create,
            RunCommand: self.run_command,
            RunButton: self.run_button,
            RunModal: self.run_modal,
            ThreadMessage: self.thread_message,
            ShowTask: self.show,
            ListTasks: self.list_tasks,
            DeleteAsk: self.delete_ask,
            DeleteTask: self.delete,
            Spend: self.spend,
            Usage: self.usage,
            IssueToken: lambda m, c, say, show: token_flows.issue(self.flows, m, show),
            ListTokens: lambda m, c, say, show: token_flows.list_tokens(self.flows, m, show),
            RevokeToken: lambda m, c, say, show: token_flows.revoke(self.flows, m, say),
            ShowAudit: lambda m, c, say, show: token_flows.audit(self.flows, m, show),
        }
        self._by_type.update(TriggerFlows(flows).handlers())  # issue 18
        self._by_type.update(stop.handlers(flows))
        self._by_type.update(extra)  # the Home tab's, the shortcut's (bot.slack.app)

    def handles(self, kind: type[Message]) -> bool:
        return kind in self._by_type

    def handle(self, message: Message, client: WebClient) -> Future[None]:
        """Run one message's slow half (after the ack), once per delivery."""
        work = self._by_type[type(message)]
        say, show = sayer(message.reply, client), block_sayer(message.reply, client)
        return self.flows.submit(
            say, lambda: work(message, client, say, show), delivery=message.delivery
        )

    def create(self, m: CreateTask, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.create(
            client,
            m.origin,
            description=m.description,
            task_type=m.task_type,
            say=say,
            direct=m.direct,
        )

    def run_command(self, m: RunCommand, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.run_command(
            client, m.origin, ref=m.ref, text=m.text, trigger_id=m.trigger_id, say=say
        )

    def run_button(self, m: RunButton, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.run_button(client, m.origin, task_id=m.task_id, trigger_id=m.trigger_id, say=say)

    def run_modal(self, m: RunModal, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.run_modal(client, m.origin, metadata=m.metadata, files=m.files, say=say)

    def thread_message(self, m: ThreadMessage, client: WebClient, say: Say, _: SayBlocks) -> None:
        self.flows.thread_message(client, m.origin, event=m.event, say=say)

    def show(self, m: ShowTask, client: WebClient, _: Say, show: SayBlocks) -> None:
        read_flows.show(self.flows, client, m.origin, ref=m.ref, version=m.version, say_blocks=show)

    def list_tasks(self, m: ListTasks, client: WebClient, _: Say, show: SayBlocks) -> None:
        read_flows.list_tasks(self.flows, m.origin, show)

    def delete_ask(self, m: DeleteAsk, client: WebClient, _: Say, show: SayBlocks) -> None:
        delete.ask(self.flows, m.origin, ref=m.ref, say_blocks=show)

    def delete(self, m: DeleteTask, client: WebClient, say: Say, _: SayBlocks) -> None:
        delete.delete(self.flows, client, m.origin, task_id=m.task_id, say=say)

    def spend(self, m: Spend, client: WebClient, _: Say, show: SayBlocks) -> None:
        read_flows.spend(self.flows, m.origin, days=m.days, say_blocks=show)

    def usage(self, m: Usage, client: WebClient, say: Say, _: SayBlocks) -> None:
        say(m.text)


def sayer(reply: Reply, client: WebClient) -> Say:
    def say(text: str) -> None:
        if reply.response_url:
            WebhookClient(reply.response_url).send(
                text=text, response_type="ephemeral", replace_original=False
            )
        elif not reply.channel_id and reply.user_id:  # from the Home tab: the app's DM
            client.chat_postMessage(channel=reply.user_id, text=text)
        else:
            client.chat_postEphemeral(
                channel=reply.channel_id, user=reply.user_id, text=text, thread_ts=reply.thread_ts
            )

    return say


def block_sayer(reply: Reply, client: WebClient) -> SayBlocks:
    def say(message: blocks.Message) -> None:
        if reply.response_url:
            WebhookClient(reply.response_url).send(
                text=message.text,
                blocks=message.blocks,
                response_type="ephemeral",
                replace_original=False,
            )
        else:
            client.chat_postEphemeral(
                channel=reply.channel_id,
                user=reply.user_id,
                text=message.text,
                blocks=message.blocks,
                thread_ts=reply.thread_ts,
            )

    return say
