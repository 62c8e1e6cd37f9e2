"""The runs' queries. The ones every run goes through (claim, outcome, its message's claims) are
built once, as Core statements with bound parameters, and run on the session's connection:
no statement is rebuilt per call and no ORM bookkeeping is done for rows nobody holds."""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    ColumnElement,
    Connection,
    Row,
    Select,
    Table,
    bindparam,
    delete,
    exists,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.orm import Session

from storage.kinds import RunStatus
from storage.models import Run, RunFile, RunInput, Task, TaskVersion

_runs = cast(Table, Run.__table__)
_inputs = cast(Table, RunInput.__table__)
_files = cast(Table, RunFile.__table__)
_UNENDED = [RunStatus.QUEUED.value, RunStatus.RUNNING.value]


@functools.lru_cache(maxsize=8)
def _record_outcome(columns: tuple[str, ...]) -> Any:
    """The outcome's UPDATE of these columns, built once (every run ends through it)."""
    return (
        update(_runs)
        .where(_runs.c.id == bindparam("run_id"), _runs.c.status.in_(_UNENDED))
        .values({_runs.c[name]: bindparam(f"p_{name}") for name in columns})
    )


_CLAIM = (
    update(_runs)
    .where(_runs.c.id == bindparam("run_id"), _runs.c.status == RunStatus.QUEUED.value)
    .values(
        status=RunStatus.RUNNING.value,
        worker=bindparam("p_worker"),
        started_at=bindparam("p_started_at"),
        attempts=_runs.c.attempts + 1,
    )
)
_DROP_INPUT = delete(_inputs).where(_inputs.c.run_id == bindparam("run_id"))
_SET_REPLY = (
    update(_runs)
    .where(_runs.c.id == bindparam("run_id"))
    .values(reply_ts=bindparam("p_reply_ts"), notified_status=bindparam("p_notified"))
)
# Where the database can (PostgreSQL, SQLite 3.35+), the status comes back in the same step.
_SET_REPLY_RETURNING = _SET_REPLY.returning(_runs.c.status)
_STATUS = select(_runs.c.status).where(_runs.c.id == bindparam("run_id"))
_INSERT_RUN = insert(_runs)
_INSERT_INPUT = insert(_inputs)
_CLAIM_REPLY_FROM_NONE = (
    update(_runs)
    .where(
        _runs.c.id == bindparam("run_id"),
        _runs.c.notified_status.is_(None),
        _runs.c.reply_error.is_(None),
    )
    .values(notified_status=bindparam("p_showing"))
)
_CLAIM_REPLY = (
    update(_runs)
    .where(
        _runs.c.id == bindparam("run_id"),
        _runs.c.notified_status == bindparam("p_shown"),
        _runs.c.reply_error.is_(None),
    )
    .values(notified_status=bindparam("p_showing"))
)
_JOB = (
    select(
        Task.task_type,
        TaskVersion.code,
        Run.input_name,
        RunInput.data,
        Run.stop_requested_by.is_not(None).label("stop_requested"),
    )
    .select_from(Run)
    .join(Task, Task.id == Run.task_id)
    .join(
        TaskVersion,
        (TaskVersion.task_id == Run.task_id) & (TaskVersion.number == Run.version_number),
    )
    .outerjoin(RunInput, RunInput.run_id == Run.id)
    .where(Run.id == bindparam("run_id"))
)


# What the run-message watcher reads of a run whose message is behind: the run as shown, where
# its message is, and whether it wrote files (so only those runs' files are read).
_REPLY_COLUMNS = [
    c for c in _runs.c if c.name not in {"worker", "input_profile", "reply_retry_at", "reply_error"}
]


@functools.cache
def _reply_pending(with_ids: bool, with_now: bool, with_teams: bool) -> Select[Any]:
    """The watcher's query, built once per shape, with bound parameters."""
    has_files = exists().where(_files.c.run_id == _runs.c.id).label("has_files")
    conditions: list[ColumnElement[bool]] = []
    if with_ids:
        conditions.append(_runs.c.id.in_(bindparam("ids", expanding=True)))
    conditions += [
        _runs.c.reply_ts.is_not(None),
        or_(_runs.c.notified_status.is_(None), _runs.c.notified_status != _runs.c.status),
        _runs.c.reply_error.is_(None),
    ]
    if with_now:
        conditions.append(
            or_(_runs.c.reply_retry_at.is_(None), _runs.c.reply_retry_at <= bindparam("now"))
        )
    if with_teams:
        conditions.append(
            or_(
                _runs.c.reply_team.is_(None),
                _runs.c.reply_team.not_in(bindparam("teams", expanding=True)),
            )
        )
    return (
        select(*_REPLY_COLUMNS, has_files)
        .where(*conditions)
        .order_by(_runs.c.queued_at)
        .limit(bindparam("limit"))
    )


_STOP_REQUESTED = select(_runs.c.id).where(
    _runs.c.id.in_(bindparam("ids", expanding=True)), _runs.c.stop_requested_by.is_not(None)
)
_FILES_OF: Select[Any] = (
    select(_files.c.run_id, _files.c.name, _files.c.size, _files.c.content)
    .where(_files.c.run_id.in_(bindparam("ids", expanding=True)))
    .order_by(_files.c.id)
)


class RunRepository:
    def __init__(self, session: Session) -> None:
        self.session = session

    def _connection(self) -> Connection:
        """This session's connection, after what the session holds (as autoflush would)."""
        self.session.flush()
        return self.session.connection()

    def _execute(self, statement: Any, params: Mapping[str, Any]) -> int:
        """A prebuilt Core statement inside this session's transaction; its row count."""
        result = self._connection().execute(statement, dict(params))
        return int(getattr(result, "rowcount", 0) or 0)

    def insert(self, run: Run, *, input_data: bytes | None = None) -> None:
        """Store a new run (and its input): two Core inserts of its set columns (the rest take
        their defaults), no ORM flush. ``run`` stays transient: the session does not track it."""
        values = {c.key: v for c in _runs.columns if (v := getattr(run, c.key)) is not None}
        connection = self._connection()
        connection.execute(_INSERT_RUN, values)
        if input_data is not None:
            connection.execute(_INSERT_INPUT, {"run_id": run.id, "data": input_data})

    def get(self, run_id: str) -> Run | None:
        return self.session.get(Run, run_id)

    def input_data(self, run_id: str) -> bytes | None:
        row = self.session.get(RunInput, run_id)
        return None if row is None else row.data

    def drop_input(self, run_id: str) -> bool:
        """Delete a run's input; whether it had one."""
        return bool(self._execute(_DROP_INPUT, {"run_id": run_id}))

    def files(self, run_id: str) -> list[RunFile]:
        stmt = select(RunFile).where(RunFile.run_id == run_id).order_by(RunFile.id)
        return list(self.session.scalars(stmt))

    def output_files(self, run_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
        """The files of each of ``run_ids`` (those with none are left out), in one query: rows
        with ``name``, ``size`` and ``content``."""
        found: dict[str, list[Row[Any]]] = {}
        if run_ids:
            rows = self._connection().execute(_FILES_OF, {"ids": list(run_ids)})
            for row in rows:
                found.setdefault(row.run_id, []).append(row)
        return found

    def add_file(self, run_file: RunFile) -> None:
        self.session.add(run_file)

    def job(self, run_id: str) -> dict[str, Any] | None:
        """What a worker needs to execute a run, in one query."""
        row = self._connection().execute(_JOB, {"run_id": run_id}).first()
        if row is None:
            return None
        return {
            "task_type": row.task_type,
            "code": row.code,
            "input_name": row.input_name,
            "input_data": row.data,
            "stop_requested": bool(row.stop_requested),
        }

    def set_reply(self, run_id: str, *, message_ts: str, shown_status: str) -> str | None:
        """Where the run's Slack message is and what it shows; the run's status as of then
        (in this transaction), or None when there is no run."""
        params = {"run_id": run_id, "p_reply_ts": message_ts, "p_notified": shown_status}
        connection = self._connection()
        if connection.dialect.update_returning:
            status = connection.execute(_SET_REPLY_RETURNING, params).scalar()
        elif connection.execute(_SET_REPLY, params).rowcount:
            status = connection.execute(_STATUS, {"run_id": run_id}).scalar()
        else:
            status = None
        return None if status is None else str(status)

    def record_outcome(
        self, run_id: str, *, values: dict[str, Any], files: Sequence[tuple[str, int, bytes]]
    ) -> bool:
        """Store a run's outcome unless it already has one (its input is the caller's: see
        ``drop_input``). True if stored."""
        params = {f"p_{key}": value for key, value in values.items()}
        if not self._execute(_record_outcome(tuple(values)), params | {"run_id": run_id}):
            return False
        if files:
            self.session.execute(
                insert(RunFile),
                [{"run_id": run_id, "name": n, "size": s, "content": c} for n, s, c in files],
            )
        return True

    def latest_for_task(self, task_id: str) -> Run | None:
        stmt = (
            select(Run)
            .where(Run.task_id == task_id)
            .order_by(Run.queued_at.desc(), Run.id.desc())
            .limit(1)
        )
        return self.session.scalars(stmt).first()

    def latest_for_tasks(self, task_ids: Sequence[str]) -> dict[str, Run]:
        if not task_ids:
            return {}
        newest = (
            select(Run.task_id, func.max(Run.queued_at).label("at"))
            .where(Run.task_id.in_(task_ids))
            .group_by(Run.task_id)
            .subquery()
        )
        stmt = select(Run).join(
            newest, (Run.task_id == newest.c.task_id) & (Run.queued_at == newest.c.at)
        )
        return {run.task_id: run for run in self.session.scalars(stmt)}

    def with_status(self, status: RunStatus, *, limit: int = 1000) -> list[Run]:
        stmt = select(Run).where(Run.status == status.value).order_by(Run.queued_at).limit(limit)
        return list(self.session.scalars(stmt))

    def recent_by(self, user_id: str, *, task_ids: Sequence[str], limit: int = 10) -> list[Run]:
        """``user_id``'s latest runs of ``task_ids``, newest first."""
        if not task_ids:
            return []
        stmt = (
            select(Run)
            .where(Run.requested_by == user_id, Run.task_id.in_(list(task_ids)))
            .order_by(Run.queued_at.desc(), Run.id)
            .limit(limit)
        )
        return list(self.session.scalars(stmt))

    def request_stop(self, run_id: str, *, by: str) -> bool:
        """Mark a queued or running run to be stopped; False when it had already ended."""
        result = self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.status.in_(_UNENDED))
            .values(stop_requested_by=by[:64])
        )
        return bool(getattr(result, "rowcount", 0))

    def stop_requested(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` someone asked to stop."""
        if not run_ids:
            return []
        rows = self._connection().execute(_STOP_REQUESTED, {"ids": list(run_ids)})
        return list(rows.scalars())

    def active_for_task(self, task_id: str) -> list[Run]:
        stmt = select(Run).where(Run.task_id == task_id, Run.status.in_(_UNENDED))
        return list(self.session.scalars(stmt))

    def claim(self, run_id: str, *, worker: str, started_at: datetime) -> bool:
        """Move a queued run to running; False when another worker got it first."""
        params = {"run_id": run_id, "p_worker": worker, "p_started_at": started_at}
        return self._execute(_CLAIM, params) > 0

    def reply_pending(
        self,
        *,
        limit: int = 50,
        now: datetime | None = None,
        exclude_teams: Sequence[str] = (),
        ids: Collection[str] | None = None,
    ) -> list[Row[Any]]:
        """Runs (among ``ids`` when given) with a Slack message that shows another status than
        the run's, whose update has not ended for good and is not waiting out a back-off (until
        ``now``), oldest first: rows with the run's columns (but for its worker, input profile
        and the reply's error and retry time) and ``has_files``."""
        stmt = _reply_pending(ids is not None, now is not None, bool(exclude_teams))
        params: dict[str, Any] = {"limit": limit}
        if ids is not None:
            if not ids:
                return []
            params["ids"] = sorted(ids)
        if now is not None:
            params["now"] = now
        if exclude_teams:
            params["teams"] = list(exclude_teams)
        return list(self._connection().execute(stmt, params))

    def claim_reply(self, run_id: str, *, shown: str | None, showing: str | None) -> bool:
        # An update that ended for good is never claimed again, even by a pass that read the
        # run before it ended.
        params = {"run_id": run_id, "p_shown": shown, "p_showing": showing}
        if shown is None:
            del params["p_shown"]
            return self._execute(_CLAIM_REPLY_FROM_NONE, params) > 0
        return self._execute(_CLAIM_REPLY, params) > 0

    def end_reply(self, run_id: str, *, error: str) -> None:
        self.session.execute(
            update(Run).where(Run.id == run_id).values(reply_error=error[:64], reply_retry_at=None)
        )

    def defer_reply(
        self, run_id: str, *, showing: str, back_to: str | None, until: datetime
    ) -> None:
        """Give a claimed update back, to be tried again from ``until``."""
        self.session.execute(
            update(Run)
            .where(Run.id == run_id, Run.notified_status == showing)
            .values(
                notified_status=back_to,
                reply_retry_at=until,
                reply_attempts=Run.reply_attempts + 1,
            )
        )

    def reply_recovered(self, run_id: str) -> None:
        self.session.execute(
            update(Run).where(Run.id == run_id).values(reply_attempts=0, reply_retry_at=None)
        )
