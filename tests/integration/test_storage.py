"""Migrations and repositories on SQLite and on the local PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from freezegun import freeze_time
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.services.fairness import Busy, RunLimits, check_run_limits, fair_order
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.kinds import RunStatus
from storage.models import Run, Task, TaskVersion
from storage.uow import UnitOfWorkFactory

TABLES = {
    "tasks",
    "task_versions",
    "runs",
    "run_inputs",
    "run_files",
    "slack_deliveries",
    "slack_installations",
    "slack_bots",
    "slack_oauth_states",
}


def test_migrations_upgrade_from_empty_and_downgrade_to_empty(db_url: str) -> None:
    engine = make_engine(db_url)
    try:
        assert set(inspect(engine).get_table_names()) == set()
        migrate.upgrade(engine)
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert migrate.is_current(engine)
        migrate.downgrade(engine)
        assert set(inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
    finally:
        engine.dispose()


def test_the_quick_schema_check_agrees_with_alembic(db_url: str) -> None:
    """``is_current`` answers from one SELECT and the revision files (no alembic import in a
    process whose schema is current); it must say what alembic says, at head and below it."""
    engine = make_engine(db_url)
    try:
        assert migrate.file_head() == migrate.head_revision(engine)
        assert not migrate.is_current(engine)  # empty: no version table
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
        head = migrate.file_head()
        assert head is not None and head != "0001"
        migrate.downgrade(engine, "0001")
        assert not migrate.is_current(engine)
        migrate.upgrade(engine)
        assert migrate.is_current(engine)
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url: str) -> None:
    engine = make_engine(sqlite_url)
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


@pytest.fixture
def uow(db_url: str):  # type: ignore[no-untyped-def]
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    yield UnitOfWorkFactory(make_session_factory(engine))
    engine.dispose()


def _task(task_id: str, **kw: object) -> Task:
    return Task(id=task_id, creator="U1", desired_action="do it", task_type="passthrough", **kw)


def _version(task_id: str, number: int) -> TaskVersion:
    return TaskVersion(
        task_id=task_id,
        number=number,
        code="def run(p): pass",
        meta={"name": "x"},
        request_kind="create",
        request_text="do it",
        requested_by="U1",
        model="m",
        prompt_version="p",
    )


@freeze_time("2026-11-25 12:00:00")
def test_tasks_versions_and_timestamps_round_trip(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u:
        u.tasks.add(_task("aaaaaaaa-0000-4000-8000-000000000001", team_id="T1", channel_id="C1"))
        u.tasks.add_version(_version("aaaaaaaa-0000-4000-8000-000000000001", 1))
        u.commit()
    with uow() as u:
        task = u.tasks.get("aaaaaaaa-0000-4000-8000-000000000001")
        assert task is not None
        assert task.created_at == datetime(2026, 11, 25, 12, tzinfo=UTC)
        assert [v.number for v in u.tasks.versions(task.id)] == [1]
        assert u.tasks.version(task.id, 1).meta == {"name": "x"}  # type: ignore[union-attr]
        assert u.tasks.latest_version_number(task.id) == 1


def test_version_numbers_are_unique_per_task(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u:
        u.tasks.add(_task("bbbbbbbb-0000-4000-8000-000000000001"))
        u.tasks.add_version(_version("bbbbbbbb-0000-4000-8000-000000000001", 1))
        u.commit()
    with uow() as u, pytest.raises(IntegrityError):
        u.tasks.add_version(_version("bbbbbbbb-0000-4000-8000-000000000001", 1))
        u.commit()


def test_foreign_keys_hold(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u, pytest.raises(IntegrityError):
        u.tasks.add_version(_version("no-such-task", 1))
        u.commit()


def test_prefix_lookup_and_team_scope(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u:
        u.tasks.add(_task("abcdef01-0000-4000-8000-000000000001", team_id="T1"))
        u.tasks.add(_task("abcdef02-0000-4000-8000-000000000002", team_id="T2"))
        u.commit()
    with uow() as u:
        assert len(u.tasks.by_prefix("abcdef")) == 2
        assert [t.id[:8] for t in u.tasks.by_prefix("abcdef0", team_id="T2")] == ["abcdef02"]
        assert u.tasks.by_prefix("abcde_") == []  # LIKE wildcards are escaped


def test_uncommitted_work_is_rolled_back(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u:
        u.tasks.add(_task("cccccccc-0000-4000-8000-000000000001"))
    with uow() as u:
        assert u.tasks.get("cccccccc-0000-4000-8000-000000000001") is None


def test_runs_claim_once_and_keep_their_input(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u:
        u.tasks.add(_task("dddddddd-0000-4000-8000-000000000001"))
        u.flush()
        u.runs.insert(
            Run(
                id="r1",
                task_id="dddddddd-0000-4000-8000-000000000001",
                version_number=1,
                requested_by="U1",
                input_name="a.csv",
                input_size=3,
                input_sha256="x",
            ),
            input_data=b"a,b",
        )
        u.commit()
    now = datetime.now(UTC)
    with uow() as u:
        assert u.runs.get("r1").status == RunStatus.QUEUED  # type: ignore[union-attr]
        assert u.runs.input_data("r1") == b"a,b"
        assert u.runs.claim("r1", worker="w1", started_at=now) is True
        assert u.runs.claim("r1", worker="w2", started_at=now) is False
        u.commit()
    with uow() as u:
        run = u.runs.get("r1")
        assert run is not None and run.status == "running" and run.worker == "w1"
        assert run.attempts == 1


def test_a_delivery_is_recorded_once(uow) -> None:  # type: ignore[no-untyped-def]
    with uow() as u:
        assert u.deliveries.record("event:Ev1", kind="event") is True
        assert u.deliveries.record("event:Ev1", kind="event") is False
        assert u.deliveries.record("event:Ev2", kind="event") is True
        u.commit()
    with uow() as u:
        assert u.deliveries.record("event:Ev1", kind="event") is False


def test_the_models_and_the_migrations_agree(db_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from storage.models import Base

    engine = make_engine(db_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        # slack_sdk's own tables are made by our migrations but not mapped by our models.
        ours = [d for d in diff if not (d[0] == "remove_table" and d[1].name.startswith("slack_"))]
        ours = [
            d for d in ours if not (d[0] == "remove_index" and d[1].table.name.startswith("slack_"))
        ]
        assert ours == []
    finally:
        engine.dispose()


def test_fair_order_takes_users_in_turn_on_either_database(uow) -> None:  # type: ignore[no-untyped-def]
    """U1 queued three runs first and was served a minute ago, U2 was never served, U3 was
    served long ago: U2's oldest goes first, then U3's, then U1's, then the rest oldest first.
    A pool that holds only some of the runs gets the order of those."""
    task_id = "eeeeeeee-0000-4000-8000-000000000001"
    base = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)

    def run(run_id: str, user: str, minute: int, **kw: object) -> Run:
        return Run(
            id=run_id,
            task_id=task_id,
            version_number=1,
            requested_by=user,
            queued_at=base.replace(minute=minute),
            **kw,
        )

    with uow() as u:
        u.tasks.add(_task(task_id))
        u.flush()
        for row in (
            run("done1", "U1", 0, status="succeeded", started_at=base.replace(minute=50)),
            run("done3", "U3", 0, status="succeeded", started_at=base.replace(minute=5)),
            run("a1", "U1", 10),
            run("a2", "U1", 11),
            run("a3", "U1", 12),
            run("b1", "U2", 20),
            run("c1", "U3", 30),
            run("c2", "U3", 31),
        ):
            u.runs.insert(row)
        u.commit()
    assert list(fair_order(uow)) == ["b1", "c1", "a1", "a2", "a3", "c2"]
    # U1's oldest is not this pool's: its own oldest of U1's (a2) takes U1's turn.
    assert list(fair_order(uow, among={"a2", "a3", "c2", "b1"})) == ["b1", "c2", "a2", "a3"]
    assert list(fair_order(uow, among=set())) == []
    # One user's runs only: oldest first, whenever that user was last served.
    assert list(fair_order(uow, among={"a3", "a2"})) == ["a2", "a3"]


def test_a_run_message_is_attached_and_the_run_status_read_back_on_either_database(uow) -> None:  # type: ignore[no-untyped-def]
    task_id = "eeeeeeee-0000-4000-8000-000000000002"
    with uow() as u:
        u.tasks.add(_task(task_id))
        u.flush()
        u.runs.insert(
            Run(
                id="r1",
                task_id=task_id,
                version_number=1,
                requested_by="U1",
                status="running",
                queued_at=datetime(2026, 12, 1, 12, 0, tzinfo=UTC),
            )
        )
        u.commit()
    with uow() as u:
        assert u.runs.set_reply("r1", message_ts="1.5", shown_status="queued") == "running"
        assert u.runs.set_reply("nope", message_ts="1.6", shown_status="queued") is None
        u.commit()
    with uow() as u:
        stored = u.runs.get("r1")
        assert (stored.reply_ts, stored.notified_status) == ("1.5", "queued")
        # A database without UPDATE .. RETURNING (SQLite before 3.35) reads the status after.
        dialect = u.session.get_bind().dialect
        dialect.update_returning = False
        try:
            assert u.runs.set_reply("r1", message_ts="1.7", shown_status="running") == "running"
            assert u.runs.set_reply("nope", message_ts="1.8", shown_status="queued") is None
        finally:
            dialect.update_returning = True


def test_queued_run_limits_count_the_user_and_the_channel_on_either_database(uow) -> None:  # type: ignore[no-untyped-def]
    at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    with uow() as u:
        for task_id, channel in (("t-c1", "C1"), ("t-c2", "C2")):
            u.tasks.add(_task(task_id, channel_id=channel))
        u.flush()
        for run_id, task_id, user, status in (
            ("q1", "t-c1", "U1", "queued"),
            ("q2", "t-c1", "U1", "queued"),
            ("q3", "t-c2", "U2", "queued"),
            ("done", "t-c1", "U2", "succeeded"),
        ):
            u.runs.insert(
                Run(
                    id=run_id,
                    task_id=task_id,
                    version_number=1,
                    requested_by=user,
                    status=status,
                    queued_at=at,
                )
            )
        u.commit()
    per_user, per_channel = RunLimits(per_user=2), RunLimits(per_channel=2)
    with uow() as u:
        with pytest.raises(Busy, match=r"you already have 2 runs waiting \(at most 2\), 3 ahead"):
            check_run_limits(u, per_user, user="U1", channel="C2")
        check_run_limits(u, per_user, user="U2", channel="C1")  # one of U2's is queued
        with pytest.raises(Busy, match=r"this channel already has 2 runs waiting"):
            check_run_limits(u, per_channel, user="U3", channel="C1")
        check_run_limits(u, per_channel, user="U1", channel="C2")
        check_run_limits(u, per_channel, user="U1", channel=None)  # no channel: no limit


def test_a_unit_of_work_left_without_commit_keeps_nothing_and_holds_up_no_writer(uow) -> None:  # type: ignore[no-untyped-def]
    """Leaving the block rolls the transaction back: on SQLite that also gives back the write
    lock, so the next writer (here, on another thread) is not held up."""
    import threading

    with pytest.raises(RuntimeError), uow() as u:
        u.tasks.add(_task("t-gone"))
        u.flush()  # written inside the transaction (SQLite: the write lock is held)
        raise RuntimeError("the caller failed")
    done = threading.Event()

    def write() -> None:
        with uow() as other:
            other.tasks.add(_task("t-kept"))
            other.commit()
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert done.wait(5), "the next writer waited on a transaction already left"
    writer.join()
    with uow() as u:
        assert u.tasks.get("t-gone") is None and u.tasks.get("t-kept") is not None
