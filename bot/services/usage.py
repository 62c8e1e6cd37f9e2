"""Usage and budgets: what every generation and run spent, and daily caps checked before one.

Every generation (all its model requests, its checks' sandbox CPU) and every run (its CPU) is one
row of the usage ledger. Budgets are optional, per workspace and per user, per UTC day, in
tokens, in money (an estimate from the price table) and in sandbox CPU-seconds; they are checked
before a model call or a run starts, so one request or run may go past a cap, never a second.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.config import Settings, price_of
from bot.services.errors import BudgetExceeded
from bot.services.generation import Tally
from bot.services.views import TaskView, money
from storage.models import UsageEvent
from storage.uow import UnitOfWorkFactory


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; the built-in table plus ``MODEL_PRICES``."""

    extra: tuple[tuple[str, float, float], ...] = ()

    def estimate(
        self, models: Sequence[str], *, input_tokens: int, output_tokens: int
    ) -> float | None:
        """The cost of these tokens on the first of ``models`` with a known price, else None."""
        for model in models:
            price = price_of(model, self.extra) if model else None
            if price is not None:
                return (input_tokens * price[0] + output_tokens * price[1]) / 1_000_000
        if not input_tokens and not output_tokens:
            return 0.0
        return None


@dataclass(frozen=True)
class Budgets:
    """Daily caps; 0 means none."""

    user_tokens: int = 0
    user_usd: float = 0.0
    user_cpu_seconds: float = 0.0
    workspace_tokens: int = 0
    workspace_usd: float = 0.0
    workspace_cpu_seconds: float = 0.0

    @classmethod
    def of(cls, settings: Settings) -> Budgets:
        return cls(
            user_tokens=settings.budget_user_daily_tokens,
            user_usd=settings.budget_user_daily_usd,
            user_cpu_seconds=settings.budget_user_daily_cpu_seconds,
            workspace_tokens=settings.budget_workspace_daily_tokens,
            workspace_usd=settings.budget_workspace_daily_usd,
            workspace_cpu_seconds=settings.budget_workspace_daily_cpu_seconds,
        )


@dataclass(frozen=True)
class Spend:
    tokens: int = 0
    cost_usd: float | None = None
    cpu_seconds: float = 0.0
    model_requests: int = 0
    runs: int = 0


@dataclass(frozen=True)
class SpendLine:
    key: str  # a user id, or a task id
    label: str  # the task's name (empty for users)
    spend: Spend


@dataclass(frozen=True)
class BudgetState:
    scope: str  # "user" or "workspace"
    unit: str  # "tokens", "usd" or "cpu_seconds"
    limit: float
    spent: float

    @property
    def exceeded(self) -> bool:
        return self.spent >= self.limit


@dataclass(frozen=True)
class UsageReport:
    team_id: str
    since: datetime
    until: datetime
    total: Spend
    by_user: tuple[SpendLine, ...]
    by_task: tuple[SpendLine, ...]
    budgets: tuple[BudgetState, ...]  # today's, for the user asking (and the workspace)
    resets_at: datetime


def amount(unit: str, value: float) -> str:
    """``12,345 tokens``, ``$0.0123``, ``4.2 CPU-s``."""
    if unit == "tokens":
        return f"{int(value):,} tokens"
    if unit == "usd":
        return money(value)
    return f"{value:,.1f} CPU-s"


def _until(moment: datetime, now: datetime) -> str:
    minutes = max(1, int((moment - now).total_seconds() // 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"


class UsageService:
    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        prices: Prices,
        budgets: Budgets,
        model: str = "",
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._uow = uow
        self._model = model  # the configured model: priced when the server names another
        self.prices = prices
        self.budgets = budgets
        self._clock = clock

    # --- the day --------------------------------------------------------------------------

    def day_start(self) -> datetime:
        now = self._clock().astimezone(UTC)
        return now.replace(hour=0, minute=0, second=0, microsecond=0)

    def resets_at(self) -> datetime:
        return self.day_start() + timedelta(days=1)

    # --- budgets --------------------------------------------------------------------------

    def _states(
        self, *, team_id: str, user_id: str | None, pending: Spend | None = None
    ) -> list[BudgetState]:
        b = self.budgets
        scopes: list[tuple[str, str | None, list[tuple[str, float]]]] = [
            (
                "workspace",
                None,
                [
                    ("tokens", b.workspace_tokens),
                    ("usd", b.workspace_usd),
                    ("cpu_seconds", b.workspace_cpu_seconds),
                ],
            )
        ]
        if user_id is not None:
            scopes.insert(
                0,
                (
                    "user",
                    user_id,
                    [
                        ("tokens", b.user_tokens),
                        ("usd", b.user_usd),
                        ("cpu_seconds", b.user_cpu_seconds),
                    ],
                ),
            )
        states: list[BudgetState] = []
        since = self.day_start()
        with self._uow() as uow:
            for scope, who, limits in scopes:
                if not any(limit for _unit, limit in limits):
                    continue
                tokens, cost, cpu, _requests, _runs = uow.usage.totals(
                    team_id=team_id, since=since, user_id=who
                )
                extra = pending or Spend()
                spent = {
                    "tokens": float(tokens + extra.tokens),
                    "usd": (cost or 0.0) + (extra.cost_usd or 0.0),
                    "cpu_seconds": cpu + extra.cpu_seconds,
                }
                states += [
                    BudgetState(scope, unit, float(limit), spent[unit])
                    for unit, limit in limits
                    if limit
                ]
        return states

    def check(
        self, *, team_id: str, user_id: str, model: bool, pending: Spend | None = None
    ) -> None:
        """Refuse (``BudgetExceeded``) when a budget this work draws on is spent for today.
        ``model``: the work asks the model (tokens, money, and the checks' CPU); otherwise it
        is a run (CPU only). ``pending``: spent by work in flight, not in the ledger yet."""
        for state in self._states(team_id=team_id, user_id=user_id, pending=pending):
            if not state.exceeded or (not model and state.unit != "cpu_seconds"):
                continue
            now = self._clock()
            reset = self.resets_at()
            who = "You have" if state.scope == "user" else "This workspace has"
            what = {"tokens": "model tokens", "usd": "model spend", "cpu_seconds": "sandbox CPU"}
            raise BudgetExceeded(
                f"{who} used today's {what[state.unit]} budget "
                f"({amount(state.unit, state.spent)} of {amount(state.unit, state.limit)}, "
                f"the daily {state.scope} budget), so nothing was started. It resets at "
                f"{reset:%Y-%m-%d %H:%M} UTC, in {_until(reset, now)}."
            )

    # --- recording ------------------------------------------------------------------------

    def cost(self, spent: Tally) -> float | None:
        """The money estimate of a generation's tokens (None: no price known)."""
        return self.prices.estimate(
            (spent.model, self._model),
            input_tokens=spent.input_tokens,
            output_tokens=spent.output_tokens,
        )

    def pending(self, spent: Tally) -> Spend:
        """What a generation in flight has spent so far, as budgets count it."""
        return Spend(
            tokens=spent.input_tokens + spent.output_tokens,
            cost_usd=self.cost(spent),
            cpu_seconds=spent.check_cpu_seconds,
            model_requests=spent.model_requests,
        )

    def generation_event(
        self,
        task: TaskView,
        user_id: str,
        *,
        spent: Tally,
        number: int | None,
        outcome: str,
    ) -> UsageEvent:
        """The ledger row of one generation (add it in the transaction that stores its result)."""
        return UsageEvent(
            at=self._clock(),
            team_id=task.team_id,
            user_id=user_id,
            kind="generation",
            outcome=outcome,
            task_id=task.id,
            version_number=number,
            model=spent.model or self._model or None,
            input_tokens=spent.input_tokens,
            output_tokens=spent.output_tokens,
            model_requests=spent.model_requests,
            cpu_seconds=spent.check_cpu_seconds,
            cost_usd=self.cost(spent),
        )

    def record(self, event: UsageEvent) -> None:
        with self._uow() as uow:
            uow.usage.add(event)
            uow.commit()

    # --- reporting ------------------------------------------------------------------------

    def report(self, *, team_id: str, user_id: str | None = None, days: int = 1) -> UsageReport:
        """What was spent in the workspace since the start of the UTC day ``days - 1`` ago."""
        since = self.day_start() - timedelta(days=max(1, days) - 1)
        with self._uow() as uow:
            total = Spend(*uow.usage.totals(team_id=team_id, since=since))
            users = uow.usage.breakdown(team_id=team_id, since=since, by="user")
            tasks = uow.usage.breakdown(team_id=team_id, since=since, by="task")
            names = uow.usage.task_names([t[0] for t in tasks if t[0]])
        return UsageReport(
            team_id=team_id,
            since=since,
            until=self._clock(),
            total=total,
            by_user=tuple(SpendLine(k, "", Spend(t, c, cpu, r, n)) for k, t, c, cpu, r, n in users),
            by_task=tuple(
                SpendLine(k, names.get(k, ""), Spend(t, c, cpu, r, n))
                for k, t, c, cpu, r, n in tasks
            ),
            budgets=tuple(self._states(team_id=team_id, user_id=user_id)),
            resets_at=self.resets_at(),
        )
