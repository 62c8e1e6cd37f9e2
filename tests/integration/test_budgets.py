"""Cost known and capped: budgets refuse before any model request or run, say which budget and
when it resets, spare other users; the spend shown adds up to the requests and runs made."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import BudgetExceeded, GenerationFailed
from storage import migrate
from storage.db import make_engine
from storage.models import Run, Task
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer

START = datetime(2026, 12, 1, 21, 0, tzinfo=UTC)
BURN = (
    "import time\n\ndef run(input_path):\n    end = time.process_time() + 0.3\n"
    "    while time.process_time() < end:\n        pass\n    return 'done'\n"
)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now


Make = Callable[..., Services]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def make(db_url: str, openai_server: FakeOpenAIServer, clock: Clock) -> Iterator[Make]:
    built: list[Services] = []

    def factory(**budgets: Any) -> Services:
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        settings = Settings(
            database_url=db_url,
            openai_base_url=openai_server.base_url,
            openai_api_key="sk-test",
            openai_model="gpt-4o-mini",
            openai_timeout=5,
            openai_max_retries=0,
            sandbox_wall_seconds=5,
            sandbox_cpu_seconds=5,
            **budgets,
        )
        services = build_services(settings, engine=engine, runner="local", clock=clock)
        built.append(services)
        return services

    yield factory
    for services in built:
        services.close()


def create(services: Services, user: str, *, team: str = "") -> str:
    from bot.services.views import Workspace

    return services.tasks.create(
        description="count lines", requested_by=user, source="slack", workspace=Workspace(team)
    ).task.id


def run(services: Services, task_id: str, user: str) -> str:
    view = services.runs.request(task_id, requested_by=user, input_data=b"a\nb\n", submit=False)
    assert services.executor is not None
    services.executor.execute(view.id)
    assert services.runs.get(view.id).final
    return view.id


def count(services: Services, model: type[Any]) -> int:
    with services.uow() as uow:
        return int(uow.session.scalar(select(func.count()).select_from(model)) or 0)


def test_a_user_over_the_daily_token_budget_is_refused_before_any_model_request(
    make: Make, openai_server: FakeOpenAIServer, clock: Clock
) -> None:
    services = make(budget_user_daily_tokens=300)
    for _ in range(2):
        openai_server.reply_code(COUNT_LINES, prompt_tokens=100, completion_tokens=50)
        create(services, "U1")  # 150 tokens each: 300 in all, the budget reached
    requests, tasks = len(openai_server.requests), count(services, Task)
    openai_server.reply_code(COUNT_LINES)
    with pytest.raises(BudgetExceeded) as info:
        create(services, "U1")
    message = str(info.value)
    assert "You have used today's model tokens budget" in message
    assert "300 tokens of 300 tokens, the daily user budget" in message
    assert "resets at 2026-12-02 00:00 UTC, in 3 h 0 min" in message
    assert len(openai_server.requests) == requests  # no model request was made
    assert count(services, Task) == tasks  # nothing half-done: no task, nothing generating

    create(services, "U2")  # another user is not affected
    assert len(openai_server.requests) == requests + 1

    first = services.tasks.list()[-1].task.id
    openai_server.reply_code(COUNT_LINES)
    with pytest.raises(BudgetExceeded):
        services.tasks.refine(first, feedback="also count words", requested_by="U1")
    assert len(openai_server.requests) == requests + 1
    run(services, first, "U1")  # runs draw on CPU, not tokens: still allowed

    clock.now = START + timedelta(hours=3)  # midnight UTC: the budget is back
    create(services, "U1")
    assert len(openai_server.requests) == requests + 2


def test_the_workspace_budget_covers_all_its_users_and_no_other_workspace(
    make: Make, openai_server: FakeOpenAIServer
) -> None:
    services = make(budget_workspace_daily_usd=0.00004)
    openai_server.reply_code(COUNT_LINES, prompt_tokens=100, completion_tokens=50)
    create(services, "U1", team="T1")  # 100 * 0.15 + 50 * 0.60 per million: $0.000045
    openai_server.reply_code(COUNT_LINES)
    with pytest.raises(BudgetExceeded, match="This workspace has used today's model spend"):
        create(services, "U2", team="T1")
    openai_server.reply_code(COUNT_LINES)
    create(services, "U2", team="T2")
    assert len(openai_server.requests) == 2


def test_a_cpu_budget_refuses_the_next_run_before_it_is_queued(
    make: Make, openai_server: FakeOpenAIServer
) -> None:
    services = make(budget_user_daily_cpu_seconds=0.25)
    openai_server.reply_code(BURN, checks=[])
    task_id = create(services, "U1")
    first = services.runs.get(run(services, task_id, "U1"))
    assert first.status == "succeeded" and (first.cpu_seconds or 0) >= 0.25
    runs = count(services, Run)
    with pytest.raises(BudgetExceeded, match=r"sandbox CPU budget .* the daily user budget"):
        services.runs.request(task_id, requested_by="U1", input_data=b"x", submit=False)
    assert count(services, Run) == runs  # not even queued
    run(services, task_id, "U2")


def test_the_spend_shown_adds_up_to_the_requests_and_runs_made(
    make: Make, openai_server: FakeOpenAIServer
) -> None:
    services = make()
    check = {
        "name": "probe",
        "code": "def probe():\n    open('s', 'w').write('a\\n')\n    assert run('s') == {'lines': 1}\n",
    }
    openai_server.reply_code(COUNT_LINES, checks=[check], prompt_tokens=1200, completion_tokens=300)
    one = create(services, "U1")
    openai_server.reply("{not json", prompt_tokens=900, completion_tokens=20)  # a repair round
    openai_server.reply_code(COUNT_LINES, prompt_tokens=1500, completion_tokens=310)
    two = create(services, "U2")
    for _ in range(3):  # a generation that fails: spent all the same
        openai_server.reply("no code here", prompt_tokens=700, completion_tokens=10)
    with pytest.raises(GenerationFailed):
        create(services, "U2")
    run_ids = [run(services, one, "U1"), run(services, one, "U2"), run(services, two, "U2")]

    report = services.usage.report(team_id="")
    total = report.total
    assert total.tokens == openai_server.served_tokens == 1500 + 920 + 1810 + 3 * 710
    assert total.model_requests == len(openai_server.requests) == 6
    assert total.runs == len(run_ids) == 3
    versions = [v for t in (one, two) for v in services.tasks.versions(t)]
    runs = [services.runs.get(r) for r in run_ids]
    assert sum(v.model_requests for v in versions) == 3  # the failed generation's 3 are not on one
    cpu = sum(v.check_cpu_seconds or 0 for v in versions) + sum(r.cpu_seconds or 0 for r in runs)
    assert all((r.cpu_seconds or 0) > 0 for r in runs)
    assert math.isclose(total.cpu_seconds, cpu, abs_tol=1e-9)
    expected_cost = sum(
        (tokens_in * 0.15 + tokens_out * 0.60) / 1e6
        for tokens_in, tokens_out in [(1200, 300), (2400, 330), (2100, 30)]
    )
    assert total.cost_usd is not None and math.isclose(total.cost_usd, expected_cost)
    assert math.isclose(
        sum(v.cost_usd or 0 for v in versions), expected_cost - 2100e-6 * 0.15 - 30e-6 * 0.6
    )
    for lines in (report.by_user, report.by_task):
        assert sum(line.spend.tokens for line in lines) == total.tokens
        assert sum(line.spend.model_requests for line in lines) == total.model_requests
        assert sum(line.spend.runs for line in lines) == total.runs
        assert math.isclose(sum(line.spend.cpu_seconds for line in lines), total.cpu_seconds)
    by_user = {line.key: line.spend for line in report.by_user}
    assert by_user["U1"].tokens == 1500 and by_user["U1"].runs == 1
    assert by_user["U2"].model_requests == 5 and by_user["U2"].runs == 2


def test_a_budget_spent_during_repairs_stops_the_next_repair_round(
    make: Make, openai_server: FakeOpenAIServer
) -> None:
    services = make(budget_user_daily_tokens=200)
    for _ in range(3):
        openai_server.reply("{not json", prompt_tokens=100, completion_tokens=50)
    with pytest.raises(BudgetExceeded, match="model tokens budget"):
        create(services, "U1")
    assert len(openai_server.requests) == 2  # 150 tokens, then 300: the third was not sent
    (summary,) = services.tasks.list()
    assert summary.task.state == "failed" and "budget" in (summary.task.state_detail or "")
    spent = services.usage.report(team_id="").total
    assert (spent.tokens, spent.model_requests) == (300, 2)
