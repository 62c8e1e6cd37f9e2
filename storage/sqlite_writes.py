"""One writer at a time per SQLite engine, handed over at once inside the process.

SQLite lets one transaction write at a time. A second writer that finds the lock taken is
put to sleep by SQLite's busy handler (1, 2, 5, 10, 15, 20, 25 ... 100 ms between tries), so
under concurrent writes threads sleep long after the lock is free again: with a dozen threads
recording runs, most of the wall time went to those sleeps. Here every connection of an
engine takes one process-wide lock just before its transaction's first write and gives it
back right after its commit or rollback, so the next writer of this process starts the moment
the last one finished. Other processes (a terminal command, the flow process) still meet the
busy handler, as before; reads take no lock (WAL: readers never wait for the writer).

If the lock cannot be had in ``wait`` seconds (a thread holding a write open while it writes
on a second connection) the write goes ahead without it and SQLite's own busy timeout
decides, exactly as without this module: never a hang.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

from sqlalchemy import Engine, event

_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "BEGIN")


def _is_write(statement: str) -> bool:
    return statement.lstrip()[:9].upper().startswith(_WRITES)


class _WriterConnection(sqlite3.Connection):
    """A connection that holds its engine's write lock from its first write to the end of
    that transaction."""

    write_lock: threading.Lock
    wait: float
    holds: bool = False

    def begin_write(self) -> None:
        if not self.holds:
            self.holds = self.write_lock.acquire(timeout=self.wait)

    def end_write(self) -> None:
        if self.holds:
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


def writer_factory(*, wait: float = 10.0) -> type[sqlite3.Connection]:
    """A ``sqlite3.connect(factory=...)`` class whose connections share one write lock: use one
    per engine (per database file), with :func:`serialise_writes` on that engine."""
    return type(
        "WriterConnection", (_WriterConnection,), {"write_lock": threading.Lock(), "wait": wait}
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
