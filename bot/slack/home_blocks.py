"""The App Home tab as Block Kit (pure): the viewer's tasks, the channel tasks they can reach,
Run and Show buttons, their recent runs, and a short how-to."""

from __future__ import annotations

from typing import Any

from bot.services.reach import Reach, RecentRun
from bot.services.views import TaskSummary
from bot.slack.block_kit import escape_inline as inline
from bot.slack.run_blocks import run_headline

HOME_RUN_ACTION = "home_run"
HOME_SHOW_ACTION = "home_show"
HOW_TO = (
    "*How to use Taskbot*\n"
    "• In a channel I'm in: `/task create <what you need>`, e.g. "
    "`/task create count the rows per country`.\n"
    "• Drop files into the task's thread to run it on each; reply in the thread to change it.\n"
    "• On any message with a file: *More actions* ⋯ → *Run a Taskbot task*.\n"
    "• `/task list`, `/task show <id>`, `/task stop <id>`, `/task help`."
)

Block = dict[str, Any]


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _task_blocks(summary: TaskSummary) -> list[Block]:
    t = summary.task
    version = f"v{t.current_version}" if t.current_version else "no version yet"
    name = inline(t.name) if t.name else inline(t.desired_action[:60])
    where = f" · <#{t.channel_id}>" if t.channel_id else ""
    line = (
        f"*{name}* `{t.id[:8]}` · {version} · last run: {summary.last_run_status or '-'}"
        f" ({t.updated_at:%Y-%m-%d %H:%M} UTC){where}"
    )
    buttons: list[Block] = [
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Show"},
            "action_id": HOME_SHOW_ACTION,
            "value": t.id,
        }
    ]
    if t.current_version:
        buttons.insert(
            0,
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Run"},
                "style": "primary",
                "action_id": HOME_RUN_ACTION,
                "value": t.id,
            },
        )
    return [_section(line), {"type": "actions", "block_id": f"home_{t.id}", "elements": buttons}]


def _run_line(recent: RecentRun) -> str:
    name = inline(recent.task.name or recent.task.id[:8])
    when = f"{recent.run.queued_at:%Y-%m-%d %H:%M} UTC"
    return f"• *{name}*: {run_headline(recent.run)} · {when}"


def home_view(reach: Reach) -> dict[str, Any]:
    blocks: list[Block] = [
        {"type": "header", "text": {"type": "plain_text", "text": "Taskbot"}},
    ]
    blocks.append(_section("*Your tasks*" if reach.own else "*Your tasks*\nNone yet."))
    for summary in reach.own:
        blocks += _task_blocks(summary)
    if reach.channel:
        blocks.append({"type": "divider"})
        blocks.append(_section("*Tasks in your channels*"))
        for summary in reach.channel:
            blocks += _task_blocks(summary)
    blocks.append({"type": "divider"})
    if reach.runs:
        lines = "\n".join(_run_line(r) for r in reach.runs)
        blocks.append(_section("*Your recent runs*\n" + lines))
    blocks.append(_section(HOW_TO))
    return {"type": "home", "blocks": blocks[:100]}
