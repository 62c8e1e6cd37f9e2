"""Block Kit for ``/task usage`` (pure): the spend by user and task, and today's budgets."""

from __future__ import annotations

import re
from collections.abc import Set

from bot.services.usage import Spend, UsageReport, amount
from bot.services.views import money
from bot.slack.block_kit import Block, Message

_UNITS = {"tokens": "model tokens", "usd": "model spend", "cpu_seconds": "sandbox CPU"}
_USER_ID = re.compile(r"^[UW][A-Z0-9]{1,20}$")
MAX_LINES = 10


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _spend(spend: Spend) -> str:
    return (
        f"{spend.tokens:,} tokens · {money(spend.cost_usd)} · {spend.cpu_seconds:.2f} CPU-s · "
        f"{spend.model_requests} req · {spend.runs} run{'s' if spend.runs != 1 else ''}"
    )


def _user(user_id: str) -> str:
    """A Slack user as a mention (ids only: nothing else can be made into one)."""
    return f"<@{user_id}>" if _USER_ID.match(user_id) else f"`{_escape(user_id[:30])}`"


def usage_message(report: UsageReport, *, visible_tasks: Set[str]) -> Message:
    """Tasks the asker may not see are counted, not named."""
    days = max(1, (report.resets_at - report.since).days)
    period = "today (UTC)" if days == 1 else f"in the last {days} days (UTC)"
    lines = [f"*Spent {period}:* {_spend(report.total)}"]
    if report.by_user:
        lines.append("\n*By user*")
        lines += [f"• {_user(u.key)}: {_spend(u.spend)}" for u in report.by_user[:MAX_LINES]]
    if report.by_task:
        lines.append("\n*By task*")
        hidden = 0
        for task in report.by_task[:MAX_LINES]:
            if task.key in visible_tasks:
                name = _escape(task.label or "unnamed")
                lines.append(f"• `{task.key[:8]}` {name}: {_spend(task.spend)}")
            else:
                hidden += 1
        if hidden:
            lines.append(f"• {hidden} task{'s' if hidden != 1 else ''} in channels you are not in")
    blocks = [_section("\n".join(lines))]
    if report.budgets:
        budget_lines = [
            f"{':no_entry:' if b.exceeded else ':large_green_circle:'} {b.scope} "
            f"{_UNITS[b.unit]}: {amount(b.unit, b.spent)} of {amount(b.unit, b.limit)}"
            for b in report.budgets
        ]
        blocks.append(
            _section(
                "*Today's budgets* (reset "
                f"<!date^{int(report.resets_at.timestamp())}^{{date_short_pretty}} at {{time}}|"
                f"{report.resets_at:%Y-%m-%d %H:%M} UTC>)\n" + "\n".join(budget_lines)
            )
        )
    else:
        blocks.append(
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": "No daily budgets are set."}],
            }
        )
    return Message(f"Spent {period}: {_spend(report.total)}", blocks)
