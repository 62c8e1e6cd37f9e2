"""``python -m bot task usage``: what was spent, by user and task, and today's budgets."""

from __future__ import annotations

from typing import TextIO

from bot.services.usage import Spend, UsageReport, amount
from bot.services.views import money

_UNITS = {"tokens": "model tokens", "usd": "model spend", "cpu_seconds": "sandbox CPU"}


def spend_text(spend: Spend) -> str:
    return (
        f"{spend.tokens:,} tokens, {money(spend.cost_usd)}, {spend.cpu_seconds:.2f} CPU-s, "
        f"{spend.model_requests} model request{'s' if spend.model_requests != 1 else ''}, "
        f"{spend.runs} run{'s' if spend.runs != 1 else ''}"
    )


def print_usage(report: UsageReport, out: TextIO) -> None:
    out.write(f"Spent since {report.since:%Y-%m-%d %H:%M} UTC: {spend_text(report.total)}\n")
    if report.by_user:
        out.write("\nBy user:\n")
        for line in report.by_user:
            out.write(f"  {line.key or '-':<20} {spend_text(line.spend)}\n")
    if report.by_task:
        out.write("\nBy task:\n")
        for line in report.by_task:
            label = f"{line.key[:8]} {line.label}".strip() if line.key else "-"
            out.write(f"  {label[:40]:<40} {spend_text(line.spend)}\n")
    if not report.budgets:
        out.write("\nNo daily budgets are set (BUDGET_* settings).\n")
        return
    out.write(f"\nToday's budgets (reset at {report.resets_at:%Y-%m-%d %H:%M} UTC):\n")
    for budget in report.budgets:
        mark = "  SPENT" if budget.exceeded else ""
        out.write(
            f"  {budget.scope:<9} {_UNITS[budget.unit]:<13} "
            f"{amount(budget.unit, budget.spent)} of {amount(budget.unit, budget.limit)}{mark}\n"
        )
