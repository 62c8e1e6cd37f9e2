"""Schedules: a task run on a cron schedule in its owner's time zone, exactly once per tick
however many processes look.

Every process looks for due schedules now and then; for each, it moves ``next_at`` from the
tick it read to the next tick *after now* in one conditional UPDATE (``ScheduleRepository.
advance``). The database lets exactly one such UPDATE match, on SQLite and PostgreSQL alike,
so exactly one process runs the tick. Ticks missed while everything was down collapse into
one: the next tick is computed from now, not from the missed one. After each run ends its
outcome is counted once (another conditional UPDATE); three failures in a row pause the
schedule and its owner is told."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from bot.services.errors import InvalidInput, NotAllowed, NotFound
from bot.services.task_reads import TaskReads
from bot.services.views import TaskView
from bot.services.when import When, describe, parse_when
from storage.kinds import RunStatus, TaskType
from storage.models import Schedule
from storage.schedules import ScheduleRepository
from storage.uow import UnitOfWorkFactory

PAUSE_AFTER = 3  # consecutive failed runs
MAX_PER_TASK = 5


def _now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ScheduleView:
    id: str
    task_id: str
    team_id: str
    enterprise_id: str | None
    owner: str
    cron: str
    timezone: str
    input_name: str | None
    next_at: datetime
    paused: bool
    failures: int
    last_run_id: str | None

    @property
    def words(self) -> str:
        return describe(self.cron, self.timezone)

    @classmethod
    def of(cls, row: Schedule) -> ScheduleView:
        return cls(
            id=row.id,
            task_id=row.task_id,
            team_id=row.team_id,
            enterprise_id=row.enterprise_id,
            owner=row.owner,
            cron=row.cron,
            timezone=row.timezone,
            input_name=row.input_name,
            next_at=row.next_at,
            paused=row.paused,
            failures=row.failures,
            last_run_id=row.last_run_id,
        )


@dataclass(frozen=True)
class Tick:
    """A tick this process won: run the schedule's task once, with its input."""

    schedule: ScheduleView
    input_data: bytes | None


@dataclass(frozen=True)
class Counted:
    """A scheduled run's end, counted once; ``paused`` when it made the schedule stop."""

    schedule: ScheduleView
    run_id: str
    status: RunStatus
    paused: bool


class ScheduleService:
    def __init__(self, *, uow: UnitOfWorkFactory, clock: Callable[[], datetime] = _now) -> None:
        self._uow = uow
        self._reads = TaskReads(uow=uow)
        self._clock = clock

    def create(
        self,
        task: TaskView,
        *,
        when: str,
        timezone: str,
        owner: str,
        input_name: str | None = None,
        input_data: bytes | None = None,
    ) -> ScheduleView:
        """Schedule ``task`` (already checked: the owner may run it) ``when``, in ``timezone``."""
        parsed = parse_when(when, timezone=timezone)
        if task.trigger_version is None:
            raise InvalidInput(f"Task `{task.id[:8]}` has no working version yet.")
        if task.task_type is TaskType.PASSTHROUGH and input_data is None:
            raise InvalidInput(
                f"Task `{task.id[:8]}` needs an input file: drop one into its thread first; "
                "the schedule runs it on the newest file there."
            )
        if task.task_type is TaskType.GENERATOR:
            input_name, input_data = None, None
        row = Schedule(
            id=str(uuid.uuid4()),
            task_id=task.id,
            team_id=task.team_id,
            enterprise_id=task.enterprise_id,
            owner=owner,
            cron=parsed.cron,
            timezone=parsed.timezone,
            input_name=input_name,
            input_data=input_data,
            next_at=parsed.next_after(self._clock()),
            paused=False,
            failures=0,
            created_at=self._clock(),
        )
        with self._uow() as uow:
            repo = ScheduleRepository(uow.session)
            if len(repo.of_task(task.id)) >= MAX_PER_TASK:
                raise InvalidInput(
                    f"Task `{task.id[:8]}` already has {MAX_PER_TASK} schedules: "
                    "`/task unschedule` one first."
                )
            repo.add(row)
            uow.commit()
            return ScheduleView.of(row)

    def of_team(self, *, team_id: str, owner: str | None = None) -> list[ScheduleView]:
        with self._uow() as uow:
            return [
                ScheduleView.of(s)
                for s in ScheduleRepository(uow.session).of_team(team_id, owner=owner)
            ]

    def remove(self, ref: str, *, team_id: str, user_id: str) -> list[ScheduleView]:
        """Remove the schedules of task ``ref`` that ``user_id`` owns (or, as the task's
        creator, any of them)."""
        task = self._reads.get(ref, team_id=team_id)
        with self._uow() as uow:
            repo = ScheduleRepository(uow.session)
            rows = repo.of_task(task.id)
            if not rows:
                raise NotFound(f"Task `{task.id[:8]}` has no schedule.")
            mine = [s for s in rows if user_id in (s.owner, task.creator)]
            if not mine:
                raise NotAllowed(
                    f"The schedules of task `{task.id[:8]}` belong to others: "
                    f"ask <@{rows[0].owner}>."
                )
            removed = [ScheduleView.of(s) for s in mine]
            for row in mine:
                uow.session.delete(row)
            uow.commit()
            return removed

    # --- ticking (every process, now and then) -----------------------------------------------

    def claim_due(self, *, now: datetime | None = None) -> list[Tick]:
        """The due ticks this process won; each schedule's ``next_at`` has moved past ``now``
        (the service's clock unless given)."""
        now = now or self._clock()
        won: list[Tick] = []
        with self._uow() as uow:
            repo = ScheduleRepository(uow.session)
            due = [(s.id, s.next_at, s.cron, s.timezone) for s in repo.due(now)]
        for schedule_id, seen, cron, tz in due:
            with self._uow() as uow:
                repo = ScheduleRepository(uow.session)
                if not repo.advance(schedule_id, seen=seen, to=When(cron, tz).next_after(now)):
                    continue  # another process has this tick
                uow.commit()
                row = repo.get(schedule_id)
                if row is not None:
                    won.append(Tick(ScheduleView.of(row), row.input_data))
        return won

    def started(self, schedule_id: str, *, run_id: str) -> None:
        with self._uow() as uow:
            row = ScheduleRepository(uow.session).get(schedule_id)
            if row is not None:
                row.last_run_id = run_id
                uow.commit()

    def could_not_start(self, schedule_id: str) -> Counted | None:
        """A tick whose run could not even be queued (over budget, task gone): one failure."""
        marker = f"unstarted-{uuid.uuid4()}"
        self.started(schedule_id, run_id=marker)
        return self._count(schedule_id, run_id=marker, status=RunStatus.FAILED)

    def count_ended(self) -> list[Counted]:
        """Count every scheduled run that ended since last time, each once across processes."""
        with self._uow() as uow:
            pending = [(s.id, s.last_run_id) for s in ScheduleRepository(uow.session).uncounted()]
            ended: list[tuple[str, str, RunStatus]] = []
            for schedule_id, run_id in pending:
                run = uow.runs.get(run_id or "")
                if run is not None and RunStatus(run.status).final:
                    ended.append((schedule_id, run.id, RunStatus(run.status)))
        counted = [self._count(s, run_id=r, status=st) for s, r, st in ended]
        return [c for c in counted if c is not None]

    def _count(self, schedule_id: str, *, run_id: str, status: RunStatus) -> Counted | None:
        with self._uow() as uow:
            repo = ScheduleRepository(uow.session)
            failures = repo.count(
                schedule_id,
                run_id=run_id,
                failed=status is not RunStatus.SUCCEEDED,
                pause_after=PAUSE_AFTER,
            )
            if failures is None:
                return None
            uow.commit()
            row = repo.get(schedule_id)
            assert row is not None
            view = ScheduleView.of(row)
        return Counted(view, run_id, status, paused=view.paused and failures == PAUSE_AFTER)
