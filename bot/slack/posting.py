"""Posting and updating Taskbot's messages, and the words for where it cannot post."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient

from bot.slack.block_kit import Message

logger = logging.getLogger(__name__)

Say = Callable[[str], None]  # tells the user something only they see, where they are
NOT_IN_CHANNEL = ("not_in_channel", "channel_not_found", "is_archived")


def nobody(text: str) -> None:
    """Where there is nobody to answer (a job of no user's): the log."""
    logger.warning("nobody to tell: %s", text)


def post(client: WebClient, channel: str, message: Message, thread_ts: str | None = None) -> str:
    response = client.chat_postMessage(
        channel=channel, text=message.text, blocks=message.blocks, thread_ts=thread_ts
    )
    return str(response["ts"])


def update(client: WebClient, channel: str, ts: str, message: Message) -> None:
    client.chat_update(channel=channel, ts=ts, text=message.text, blocks=message.blocks)


def not_here(*, direct: bool) -> str:
    if direct:  # nobody can invite an app into a direct message between people
        return (
            "I can't post in a direct message between people. Run the command in a channel "
            "I'm in, or in my own Messages tab (find Taskbot under Apps)."
        )
    return (
        "I'm not in this channel, so I can't post the task here. Invite me with "
        "`/invite @Taskbot`, then run the command again."
    )
