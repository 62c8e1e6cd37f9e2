"""Fair shares between users: limits per user and per channel, and work taken from users in turn.

Model work (a create or refine waiting on the model) goes through ``FairPool``: an in-process
pool whose threads take the next job from the user who was served least recently (round robin
by user), so one user's burst waits behind itself, not in front of everyone else.

Runs are dealt out from the database (``fair_order``): whoever takes a run (a thread of the
local pool, or a Celery worker handed any run id) claims the oldest queued run of the user whose
last run started longest ago. One Celery message is one free slot, not one particular run: the
number of messages still equals the number of queued runs, so nothing is lost, and the order no
longer depends on the order messages were sent. The same rule on one machine and on many.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Collection, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, cast

from sqlalchemy import Table, bindparam, case, func, select

from bot.services.errors import ServiceError
from storage.kinds import RunStatus
from storage.models import Run, Task
from storage.uow import UnitOfWork, UnitOfWorkFactory


class Busy(ServiceError):
    """Over a fair-share limit: nothing was started; the answer says how much is ahead."""

    code = "busy"


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


# --- model work ----------------------------------------------------------------------------


@dataclass(eq=False)
class Ticket:
    """A place reserved in the pool for one user's job in one channel."""

    user: str
    channel: str
    ahead: int  # jobs that will start before this one, when it was reserved
    _job: Callable[[], None] | None = field(default=None, repr=False)
    _released: bool = field(default=False, repr=False)


class FairPool:
    """Threads that take jobs from users in turn, with at most ``per_user`` (and
    ``per_channel``) jobs waiting or running for one user (channel); 0 is no limit.

    ``reserve`` takes the place (or raises ``Busy``), ``submit`` hands it the job, ``release``
    gives back a place that got no job, or whose job is done with the model (the pool releases
    it anyway when the job ends; a second release is nothing)."""

    def __init__(
        self, *, workers: int, per_user: int, per_channel: int, name: str = "taskbot-model"
    ) -> None:
        self.per_user = per_user
        self.per_channel = per_channel
        self._cond = threading.Condition()
        self._waiting: dict[str, deque[Ticket]] = {}  # user -> their submitted jobs, in order
        self._turns: deque[str] = deque()  # users with waiting jobs, next to serve first
        self._held: dict[str, int] = {}  # user -> places reserved (waiting or running)
        self._held_channel: dict[str, int] = {}
        self._closed = False
        self._pending = 0  # jobs submitted and not yet ended (waiting or running)
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def _ahead_of(self, user: str) -> int:
        """Jobs that start before a new job of ``user`` when taken in turn."""
        mine = len(self._waiting.get(user, ()))
        return mine + sum(min(len(q), mine + 1) for u, q in self._waiting.items() if u != user)

    def reserve(self, *, user: str, channel: str) -> Ticket:
        with self._cond:
            held, in_channel = self._held.get(user, 0), self._held_channel.get(channel, 0)
            ahead = sum(len(q) for q in self._waiting.values())
            if self.per_user and held >= self.per_user:
                raise Busy(
                    f"Busy: you already have {_plural(held, 'request')} with the model "
                    f"(at most {self.per_user} at once), {ahead} ahead of you. Nothing was "
                    "started: ask again when one is ready."
                )
            if self.per_channel and in_channel >= self.per_channel:
                raise Busy(
                    f"Busy: this channel already has {_plural(in_channel, 'request')} with the "
                    f"model (at most {self.per_channel} at once), {ahead} ahead of you. Nothing "
                    "was started: ask again when one is ready."
                )
            self._held[user] = held + 1
            self._held_channel[channel] = in_channel + 1
            return Ticket(user, channel, self._ahead_of(user))

    def release(self, ticket: Ticket) -> None:
        with self._cond:
            if ticket._released:
                return
            ticket._released = True
            self._held[ticket.user] -= 1
            self._held_channel[ticket.channel] -= 1
            if not self._held[ticket.user]:
                del self._held[ticket.user]
            if not self._held_channel[ticket.channel]:
                del self._held_channel[ticket.channel]

    def submit(self, ticket: Ticket, work: Callable[[], None]) -> Future[None]:
        future: Future[None] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                work()
            except BaseException as exc:  # the caller's work logs its own failures
                future.set_exception(exc)
            else:
                future.set_result(None)

        with self._cond:
            if self._closed:
                raise RuntimeError("the model pool is closed")
            ticket._job = job
            queue = self._waiting.setdefault(ticket.user, deque())
            if not queue:
                self._turns.append(ticket.user)
            queue.append(ticket)
            self._pending += 1
            self._cond.notify()
        return future

    def _next(self) -> Ticket | None:
        with self._cond:
            while not self._turns and not self._closed:
                self._cond.wait()
            if not self._turns:
                return None
            user = self._turns.popleft()
            queue = self._waiting[user]
            ticket = queue.popleft()
            if queue:
                self._turns.append(user)  # their next job waits for everyone else's turn
            else:
                del self._waiting[user]
            return ticket

    def _work(self) -> None:
        while (ticket := self._next()) is not None:
            try:
                assert ticket._job is not None
                ticket._job()
            finally:
                self.release(ticket)
                with self._cond:
                    self._pending -= 1
                    self._cond.notify_all()

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._pending > 0

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is waiting or running; False when ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._cond:
            return self._cond.wait_for(
                lambda: self._pending == 0, max(0.0, deadline - time.monotonic())
            )

    def waiting(self) -> int:
        with self._cond:
            return sum(len(q) for q in self._waiting.values())

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._cond:
            self._closed = True
            if cancel_futures:
                self._pending -= sum(len(q) for q in self._waiting.values())
                self._waiting.clear()
                self._turns.clear()
            self._cond.notify_all()
        if wait:
            for thread in self._threads:
                thread.join()


# --- runs ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunLimits:
    """Queued runs allowed per user and per channel (0: no limit)."""

    per_user: int = 0
    per_channel: int = 0


NO_LIMITS = RunLimits()


def check_run_limits(uow: UnitOfWork, limits: RunLimits, *, user: str, channel: str | None) -> None:
    """Raise ``Busy`` when ``user`` (or ``channel``) already has its share of queued runs (read
    in ``uow``, the unit of work that stores the new run)."""
    if not (limits.per_user or limits.per_channel):
        return
    params = {"p_user": user, "p_channel": channel}
    total, mine, here = uow.session.connection().execute(_QUEUED_COUNTS, params).one()
    if limits.per_user and mine >= limits.per_user:
        raise Busy(
            f"Busy: you already have {_plural(mine, 'run')} waiting (at most "
            f"{limits.per_user}), {total} ahead of you. Nothing was started: run it "
            "again when some have finished."
        )
    if limits.per_channel and channel and here >= limits.per_channel:
        raise Busy(
            f"Busy: this channel already has {_plural(here, 'run')} waiting (at "
            f"most {limits.per_channel}), {total} ahead of you. Nothing was started: "
            "run it again when some have finished."
        )


# Prebuilt Core statements on the session's connection (no ORM compile per pick).
_runs = cast(Table, Run.__table__)
_tasks = cast(Table, Task.__table__)
# Every queued run, ``p_user``'s and ``p_channel``'s, in one pass (every run request asks).
_QUEUED_COUNTS = (
    select(
        func.count(),
        func.coalesce(func.sum(case((_runs.c.requested_by == bindparam("p_user"), 1), else_=0)), 0),
        func.coalesce(
            func.sum(case((_tasks.c.channel_id == bindparam("p_channel"), 1), else_=0)), 0
        ),
    )
    .select_from(_runs.join(_tasks, _tasks.c.id == _runs.c.task_id))
    .where(_runs.c.status == RunStatus.QUEUED.value)
)
_QUEUED = (
    select(_runs.c.id, _runs.c.requested_by)
    .where(_runs.c.status == RunStatus.QUEUED.value)
    .order_by(_runs.c.queued_at, _runs.c.id)
    .limit(bindparam("limit"))
)
_LAST_START = (
    select(_runs.c.requested_by, func.max(_runs.c.started_at))
    .where(
        _runs.c.requested_by.in_(bindparam("users", expanding=True)),
        _runs.c.started_at.is_not(None),
    )
    .group_by(_runs.c.requested_by)
)


# Each user's oldest queued run, oldest first: the database ranks them (no row per queued run
# comes back to Python, however long the queue).
_ranked = (
    select(
        _runs.c.id,
        _runs.c.requested_by,
        _runs.c.queued_at,
        func.row_number()
        .over(partition_by=_runs.c.requested_by, order_by=(_runs.c.queued_at, _runs.c.id))
        .label("n"),
    )
    .where(_runs.c.status == RunStatus.QUEUED.value)
    .subquery()
)
_FIRSTS = (
    select(_ranked.c.id, _ranked.c.requested_by)
    .where(_ranked.c.n == 1)
    .order_by(_ranked.c.queued_at, _ranked.c.id)
)


def fair_order(
    uow_factory: UnitOfWorkFactory, *, among: Collection[str] | None = None, limit: int = 500
) -> Iterator[str]:
    """Queued run ids in the order they should be taken: each user's oldest queued run, the
    user whose last run started longest ago (or never) first, then the rest oldest first.
    ``among`` restricts the choice to those runs (a pool deals out only what it was given).

    Lazily: a slot takes the first it can claim, so the rest are read only if none of the
    users' first runs could be (another worker took them)."""
    if among is not None and not among:
        return
    with uow_factory() as uow:
        connection = uow.session.connection()
        firsts = [(row.id, row.requested_by) for row in connection.execute(_FIRSTS)]
        # Each user's oldest is theirs among ``among`` too when all of them are in it.
        exact = among is None or all(run_id in among for run_id, _ in firsts)
        # One user's turn needs no last starts: it is the only one (a burst of one user's).
        last = (
            _last_starts(connection, {user for _, user in firsts})
            if exact and len(firsts) > 1
            else {}
        )
    offered: set[str] = set()
    if exact:
        for run_id in _in_turn(firsts, last):
            offered.add(run_id)
            yield run_id
    for run_id in _full_order(uow_factory, among=among, limit=limit):
        if run_id not in offered:
            yield run_id


def _last_starts(connection: Any, users: set[str]) -> dict[str, Any]:
    """When each of ``users`` last had a run started (users never served are left out)."""
    if not users:
        return {}
    found = connection.execute(_LAST_START, {"users": sorted(users)})
    return {user: started for user, started in found}


def _in_turn(firsts: list[tuple[str, str]], last: dict[str, Any]) -> list[str]:
    """``firsts`` (each user's oldest run, oldest first) in turn: never-served users first,
    then by their last start; ties by their oldest queued run."""
    position = {run_id: i for i, (run_id, _) in enumerate(firsts)}
    turn = sorted(
        firsts,
        key=lambda item: (last.get(item[1]) is not None, last.get(item[1]), position[item[0]]),
    )
    return [run_id for run_id, _ in turn]


def _full_order(
    uow_factory: UnitOfWorkFactory, *, among: Collection[str] | None, limit: int
) -> list[str]:
    """The whole order, from the oldest ``limit`` queued runs (of ``among``)."""
    with uow_factory() as uow:
        connection = uow.session.connection()
        rows = list(connection.execute(_QUEUED, {"limit": limit}))
        if among is not None:  # filtered here: a long IN list costs more than the rows
            rows = [row for row in rows if row.id in among]
        firsts: dict[str, str] = {}
        for row in rows:
            firsts.setdefault(row.requested_by, row.id)
        last = _last_starts(connection, set(firsts))
    first_ids = _in_turn([(run_id, user) for user, run_id in firsts.items()], last)
    chosen = set(first_ids)
    return first_ids + [row.id for row in rows if row.id not in chosen]
