"""SQLite writers of one process queue on the engine's write lock: it is held from a
transaction's first write to its commit or rollback, never kept by a connection returned to the
pool, and many threads writing at once all get their writes stored."""

from __future__ import annotations

import threading
from pathlib import Path

from sqlalchemy import text

from storage.db import make_engine
from storage.sqlite_writes import _WriterConnection


def _lock_of(engine: object) -> threading.Lock:
    with engine.connect() as conn:  # type: ignore[attr-defined]
        dbapi = conn.connection.dbapi_connection
        assert isinstance(dbapi, _WriterConnection)
        return dbapi.write_lock


def test_the_lock_is_held_from_the_first_write_to_commit_or_rollback(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    lock = _lock_of(engine)
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
        assert not lock.locked()  # reads take no lock
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert lock.locked()
        conn.commit()
        assert not lock.locked()
        conn.execute(text("UPDATE t SET n = 2"))
        assert lock.locked()
        conn.rollback()
        assert not lock.locked()
        conn.execute(text("DELETE FROM t"))
    assert not lock.locked()  # back in the pool: reset, the lock given back
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t")).scalars().all() == [1]


def test_concurrent_writers_all_get_their_writes_stored(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'w.db'}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    errors: list[BaseException] = []

    def write(base: int) -> None:
        try:
            for i in range(40):
                with engine.begin() as conn:
                    conn.execute(text("INSERT INTO t VALUES (:n)"), {"n": base + i})
                    conn.execute(text("UPDATE t SET n = n WHERE n = :n"), {"n": base + i})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(k * 1000,)) for k in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(DISTINCT n) FROM t")).scalar() == 320
    assert not _lock_of(engine).locked()
