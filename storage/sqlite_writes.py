"""One writer at a time per SQLite database, handed over at once, within a process and across
the app's processes.

SQLite lets one transaction write at a time. A second writer that finds the lock taken is
put to sleep by SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ... 100 ms between tries), so
under concurrent writes threads sleep long after the lock is free again: with a dozen threads
recording runs, most of the wall time went to those sleeps. Here every connection of an
engine takes one process-wide lock just before its transaction's first write and gives it
back right after its commit or rollback, so the next writer of this process starts the moment
the last one finished. Between processes (serve's flow and pool processes, a terminal
command) the same is done with an exclusive ``flock`` on a file beside the database
(``<db>-writer``, 0600): tried at once, then again after 0.1 ms, doubling to 2 ms between
tries, instead of SQLite's 1 to 100 ms. Reads take no lock (WAL: readers never wait for the
writer).

If a lock cannot be had in ``wait`` seconds (a thread holding a write open while it writes
on a second connection, a process that does not take the file lock) the write goes ahead
without it and SQLite's own busy timeout decides, exactly as without this module: never a
hang.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

logger = logging.getLogger(__name__)

WRITER_SUFFIX = "-writer"
_FIRST_PAUSE, _LONGEST_PAUSE = 0.0001, 0.002

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "BEGIN")


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:9].upper().startswith(_WRITES)


class _WriterConnection(sqlite3.Connection):
    """A connection that holds its engine's write lock from its first write to the end of
    that transaction."""

    write_lock: threading.Lock
    wait: float
    lock_file: _LockFile | None
    holds: bool = False
    holds_file: bool = False

    def begin_write(self) -> None:
        if self.holds:
            return
        deadline = time.monotonic() + self.wait
        self.holds = self.write_lock.acquire(timeout=self.wait)
        if self.holds and self.lock_file is not None:
            self.holds_file = self.lock_file.acquire(deadline)

    def end_write(self) -> None:
        if self.holds:
            if self.holds_file:
                self.holds_file = False
                assert self.lock_file is not None
                self.lock_file.release()
            self.holds = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self.end_write()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self.end_write()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.end_write()


class _LockFile:
    """The database's writer lock between processes: ``flock`` on ``<db>-writer``, opened on
    first use (close-on-exec: the sandbox never holds it). Used under the process's own lock,
    so one thread of a process at a time."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._fd: int | None = None
        self._broken = False

    def acquire(self, deadline: float) -> bool:
        fd = self._open()
        if fd is None:
            return False
        pause = _FIRST_PAUSE
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
            time.sleep(pause)
            pause = min(pause * 2, _LONGEST_PAUSE)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _open(self) -> int | None:
        if self._fd is None and not self._broken:
            try:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            except OSError:
                self._broken = True  # a read-only place: SQLite's busy handler alone, as before
                logger.warning("no writer lock file at %s; SQLite's own locking alone", self._path)
        return self._fd


def writer_factory(*, wait: float = 10.0, database: Path | None = None) -> type[sqlite3.Connection]:
    """A ``sqlite3.connect(factory=...)`` class whose connections share one write lock: use one
    per engine (per database file), with :func:`serialise_writes` on that engine. With
    ``database`` (a file, not in memory) writers of other processes are queued too."""
    lock_file = _LockFile(Path(f"{database}{WRITER_SUFFIX}")) if database is not None else None
    return type(
        "WriterConnection",
        (_WriterConnection,),
        {"write_lock": threading.Lock(), "wait": wait, "lock_file": lock_file},
    )


def serialise_writes(engine: Engine) -> None:
    """Take the write lock before each transaction's first write (the connections must come
    from :func:`writer_factory`)."""

    def before_execute(
        _conn: Any, cursor: Any, statement: str, *_args: Any, **_kwargs: Any
    ) -> None:
        connection = cursor.connection
        if isinstance(connection, _WriterConnection) and _is_write(statement):
            connection.begin_write()

    event.listen(engine, "before_cursor_execute", before_execute)
