"""Users' data at rest: files only the app's user can read, and deletion that deletes.

Every process of the app starts with umask 077 (``restrict_umask``), so whatever it creates is
0600/0700; the SQLite database, its ``-wal`` and ``-shm`` files and the directory the app made
for them are also set so explicitly (a file created before, or by another tool, is closed on
the next start). SQLite runs with ``secure_delete`` (freed content is overwritten with zeros)
and, after users' data is deleted, ``scrub`` checkpoints the WAL into the database and
truncates it, so deleted bytes stay neither in the WAL nor in free pages.
"""

from __future__ import annotations

import contextlib
import logging
import os
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

logger = logging.getLogger(__name__)

PRIVATE_UMASK = 0o077
SQLITE_SUFFIXES = ("", "-wal", "-shm", "-journal", "-writer")  # -writer: storage.sqlite_writes
BUSY_TIMEOUT_MS = 10000  # storage.db's busy_timeout
SCRUB_WAIT_MS = 250


def restrict_umask() -> None:
    """Files and directories this process creates are its user's only."""
    os.umask(PRIVATE_UMASK)


def sqlite_path(url: str) -> Path | None:
    """The database file of an SQLite URL (None for other databases and in-memory ones)."""
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:"):
        database = database[5:].split("?", 1)[0]
    return Path(database)


def prepare_sqlite_file(path: Path) -> None:
    """Create the database file 0600 before SQLite does (in a 0700 directory when this makes
    the directory), and close an existing one and its companions to the app's user."""
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600))
    close_sqlite_files(path)


def close_sqlite_files(path: Path) -> None:
    for suffix in SQLITE_SUFFIXES:
        with contextlib.suppress(FileNotFoundError):
            os.chmod(f"{path}{suffix}", 0o600)


def scrub(engine: Engine) -> None:
    """After users' data was deleted: on SQLite, move the WAL into the (zero-filled) database
    and truncate it, so the deleted bytes are nowhere on disk under the data directory. On
    PostgreSQL deleted rows go when (auto)vacuum reclaims them."""
    if engine.dialect.name != "sqlite":
        return
    try:
        with engine.connect() as conn:
            # Wait only briefly for readers: a busy WAL is truncated by the next scrub (the
            # retention job scrubs every minute), never by holding up the caller.
            conn.execute(text(f"PRAGMA busy_timeout={SCRUB_WAIT_MS}"))
            try:
                busy = conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            finally:
                conn.execute(text(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}"))
        if busy is not None and busy[0]:
            logger.info("the WAL could not be truncated now (a reader); the next scrub will")
    except Exception:
        logger.exception("could not checkpoint the SQLite WAL")
