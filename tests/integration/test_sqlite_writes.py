"""SQLite writers of one process queue on the engine's write lock: it is held from a
transaction's first write to its commit or rollback, never kept by a connection returned to the
pool, and many threads writing at once all get their writes stored. Writers of different
processes queue on the database's writer lock file the same way, and one held too long never
hangs a write."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import threading
from pathlib import Path

from sqlalchemy import create_engine, text

from storage.db import make_engine
from storage.sqlite_writes import (
    WRITER_SUFFIX,
    _WriterConnection,
    serialise_writes,
    writer_factory,
)


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


def _held_elsewhere(lock_file: Path) -> bool:
    """Whether another open file (another process, or another descriptor here) holds the
    writer lock file's lock: flock locks belong to open files, so this one conflicts too."""
    fd = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def test_writers_of_other_processes_queue_on_the_writer_lock_file(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    engine = make_engine(f"sqlite:///{database}")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    lock_file = Path(f"{database}{WRITER_SUFFIX}")
    with engine.connect() as conn:
        conn.execute(text("SELECT count(*) FROM t"))
        conn.execute(text("INSERT INTO t VALUES (1)"))
        assert _held_elsewhere(lock_file)  # what another process's writer waits on
        assert oct(lock_file.stat().st_mode & 0o777) == "0o600"
        conn.commit()
        conn.execute(text("SELECT count(*) FROM t"))
        assert not _held_elsewhere(lock_file)  # given back at the commit; reads take none
        assert not _held_elsewhere(lock_file)
    # Another process's writer, started while the file is held: it writes once it is free.
    code = (
        "import sys; from sqlalchemy import text; from storage.db import make_engine\n"
        "engine = make_engine(sys.argv[1])\n"
        "with engine.begin() as conn:\n"
        "    conn.execute(text('INSERT INTO t VALUES (2)'))\n"
    )
    holder = os.open(lock_file, os.O_RDWR | os.O_CLOEXEC)
    fcntl.flock(holder, fcntl.LOCK_EX)
    other = subprocess.Popen(
        [sys.executable, "-c", code, f"sqlite:///{database}"], cwd=Path(__file__).parents[2]
    )
    fcntl.flock(holder, fcntl.LOCK_UN)
    os.close(holder)
    assert other.wait(timeout=60) == 0
    with engine.connect() as conn:
        assert conn.execute(text("SELECT n FROM t ORDER BY n")).scalars().all() == [1, 2]


def test_a_writer_lock_file_held_too_long_never_hangs_a_write(tmp_path: Path) -> None:
    database = tmp_path / "w.db"
    engine = create_engine(
        f"sqlite:///{database}",
        connect_args={"factory": writer_factory(wait=0.2, database=database)},
    )
    serialise_writes(engine)
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE t (n INTEGER)"))
    holder = os.open(Path(f"{database}{WRITER_SUFFIX}"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC)
    fcntl.flock(holder, fcntl.LOCK_EX)  # held by someone that never writes
    try:
        with engine.begin() as conn:  # goes ahead without it: SQLite's own locking decides
            conn.execute(text("INSERT INTO t VALUES (1)"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT n FROM t")).scalars().all() == [1]
    finally:
        os.close(holder)
    assert not _lock_of(engine).locked()
