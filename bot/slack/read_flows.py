"""The read-only commands: ``/task list``, ``/task show`` and ``/task usage``."""

from __future__ import annotations

import logging
from collections.abc import Callable

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import ServiceError
from bot.slack import blocks
from bot.slack.flows import SlackFlows
from bot.slack.messages import Origin
from bot.slack.usage_blocks import usage_message

logger = logging.getLogger(__name__)


def list_tasks(
    flows: SlackFlows, origin: Origin, say_blocks: Callable[[blocks.Message], None]
) -> None:
    flows.gate(origin)
    summaries = flows.services.tasks.list(
        team_id=origin.team_id, channel_id=origin.channel_id, limit=15
    )
    say_blocks(blocks.task_list(summaries))


def show(
    flows: SlackFlows,
    client: WebClient,
    origin: Origin,
    *,
    ref: str,
    version: int | None,
    say_blocks: Callable[[blocks.Message], None],
) -> None:
    flows.gate(origin)
    task = flows.task_for(origin, ref)
    detail = flows.services.tasks.show(task.id, version=version, team_id=origin.team_id)
    permalink = None
    if task.channel_id and task.thread_ts:
        try:
            permalink = client.chat_getPermalink(
                channel=task.channel_id, message_ts=task.thread_ts
            ).get("permalink")
        except SlackApiError:
            logger.warning("no permalink for task %s", task.id)
    say_blocks(blocks.task_show(detail, permalink=permalink))


def spend(
    flows: SlackFlows, origin: Origin, *, days: int, say_blocks: Callable[[blocks.Message], None]
) -> None:
    """``/task usage``: the workspace's spend; tasks named only where the user may see them."""
    flows.gate(origin)
    report = flows.services.usage.report(team_id=origin.team_id, user_id=origin.user_id, days=days)
    visible = set()
    for line in report.by_task:
        try:
            flows.task_for(origin, line.key)
        except ServiceError:
            continue
        visible.add(line.key)
    say_blocks(usage_message(report, visible_tasks=visible))
