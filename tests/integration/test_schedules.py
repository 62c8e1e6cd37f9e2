"""Schedules against a real database (SQLite and PostgreSQL): two processes (two engines, two
service stacks) race for every tick under a frozen, then advanced, clock."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from freezegun import freeze_time

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import InvalidInput
from bot.services.outcomes import RunOutcome
from bot.services.schedules import Tick
from bot.services.views import TaskView, Workspace
from bot.services.when import describe, parse_when
from storage import migrate
from storage.db import make_engine
from storage.kinds import RunStatus
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

GENERATOR = "def run(input_path):\n    return 'tick'\n"


@pytest.fixture
def two(db_url: str) -> Iterator[tuple[Services, Services]]:
    settings = Settings(database_url=db_url, sandbox_insecure=True)
    migrate.upgrade(make_engine(db_url))
    model = FakeCodeGenerator(answer_json(code=GENERATOR, name="ticker"))
    a = build_services(settings, engine=make_engine(db_url), generator=model)
    b = build_services(settings, engine=make_engine(db_url), generator=model)
    try:
        yield a, b
    finally:
        a.close()
        b.close()


def make_task(services: Services) -> TaskView:
    detail = services.tasks.create(
        description="say tick",
        task_type="generator",
        requested_by="U1",
        source="slack",
        workspace=Workspace("T1"),
        channel_id="C1",
        thread_ts="1700000000.000100",
    )
    return services.tasks.get(detail.task.id)


def race(a: Services, b: Services) -> list[Tick]:
    """Both processes look for due schedules at the same moment."""
    barrier = threading.Barrier(2)
    won: list[list[Tick]] = [[], []]

    def look(i: int, services: Services) -> None:
        barrier.wait()
        won[i] = services.schedules.claim_due()

    threads = [threading.Thread(target=look, args=(i, s)) for i, s in enumerate((a, b))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return won[0] + won[1]


def test_two_processes_run_each_tick_once_and_a_missed_stretch_once(
    two: tuple[Services, Services],
) -> None:
    a, b = two
    with freeze_time("2026-12-01 10:30:00") as clock:
        task = make_task(a)
        schedule = a.schedules.create(task, when="every hour", timezone="UTC", owner="U1")
        assert schedule.next_at == datetime(2026, 12, 1, 11, 0, tzinfo=UTC)
        clock.move_to("2026-12-01 10:59:59")
        assert race(a, b) == []
        clock.move_to("2026-12-01 11:00:05")
        assert len(race(a, b)) == 1
        assert race(a, b) == []  # the same tick, looked at again
        clock.move_to("2026-12-01 12:00:01")
        assert len(race(a, b)) == 1
        # Everything down from 12:30 to 17:20: five ticks missed, one run on return.
        clock.move_to("2026-12-01 17:20:00")
        won = race(a, b)
        assert len(won) == 1
        assert won[0].schedule.next_at == datetime(2026, 12, 1, 18, 0, tzinfo=UTC)
        assert race(a, b) == []


def test_three_failures_in_a_row_pause_the_schedule_once(two: tuple[Services, Services]) -> None:
    a, b = two
    with freeze_time("2026-12-01 08:00:00") as clock:
        task = make_task(a)
        a.schedules.create(task, when="daily at 09:00", timezone="UTC", owner="U1")
        paused = []
        outcomes = (RunStatus.FAILED, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.TIMED_OUT)
        for day, status in enumerate((*outcomes, RunStatus.FAILED), start=1):
            clock.move_to(f"2026-12-{day:02d} 09:00:30")
            (tick,) = race(a, b)
            run = a.runs.request(task.id, requested_by="U1", team_id="T1", submit=False)
            a.schedules.started(tick.schedule.id, run_id=run.id)
            a.runs.finish(run.id, RunOutcome(status=status, error_type="X", error_message="x"))
            counted = a.schedules.count_ended() + b.schedules.count_ended()
            assert len(counted) == 1  # each end counted once across processes
            paused += [c for c in counted if c.paused]
        # Failed, succeeded (reset), failed, timed out, failed: the third in a row pauses.
        assert [c.status for c in paused] == [RunStatus.FAILED]
        clock.move_to("2026-12-06 09:00:30")
        assert race(a, b) == []
        (view,) = a.schedules.of_team(team_id="T1")
        assert view.paused and view.failures == 3


def test_a_schedule_more_often_than_every_five_minutes_is_refused(
    two: tuple[Services, Services],
) -> None:
    a, _ = two
    with freeze_time("2026-12-01 08:00:00"):
        task = make_task(a)
        with pytest.raises(InvalidInput, match="every 5 minutes"):
            a.schedules.create(task, when="* * * * *", timezone="UTC", owner="U1")
        assert a.schedules.of_team(team_id="T1") == []


@pytest.mark.parametrize(
    ("said", "cron", "words"),
    [
        ("daily at 09:00", "0 9 * * *", "every day at 09:00 (Europe/Paris)"),
        ("weekdays at 8:30", "30 8 * * 1-5", "weekdays at 08:30 (Europe/Paris)"),
        ("mondays at 2pm", "0 14 * * 1", "Mondays at 14:00 (Europe/Paris)"),
        ("every hour", "0 * * * *", "every hour, on the hour (Europe/Paris)"),
        ("every 15 minutes", "*/15 * * * *", "every 15 minutes (Europe/Paris)"),
        ("0 7 1 * *", "0 7 1 * *", "cron `0 7 1 * *` (Europe/Paris)"),
    ],
)
def test_phrases_and_cron_expressions_are_read_and_told_back(
    said: str, cron: str, words: str
) -> None:
    when = parse_when(said, timezone="Europe/Paris")
    assert when.cron == cron
    assert describe(when.cron, when.timezone) == words


def test_a_daily_time_stays_local_across_daylight_saving() -> None:
    when = parse_when("daily at 09:00", timezone="Europe/Paris")
    winter = when.next_after(datetime(2026, 3, 27, 12, 0, tzinfo=UTC))
    summer = when.next_after(winter)
    assert (winter.astimezone(UTC).hour, summer.astimezone(UTC).hour) == (8, 7)


@pytest.mark.parametrize("said", ["sometimes", "daily at 25:00", "every 2 minutes", "1 2 3"])
def test_unreadable_schedules_get_a_short_answer_with_examples(said: str) -> None:
    with pytest.raises(InvalidInput):
        parse_when(said, timezone="Nowhere/Unknown")
