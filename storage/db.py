"""Engines and session factories. Nothing is built at import time."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

from storage.private import BUSY_TIMEOUT_MS, prepare_sqlite_file, sqlite_path
from storage.sqlite_writes import serialise_writes, writer_factory

if TYPE_CHECKING:
    from sqlalchemy.orm import Session, sessionmaker


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL URLs written the usual way."""
    parsed = make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cursor.execute("PRAGMA secure_delete=ON")  # freed content is zeroed (storage.private)
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``: SQLite in WAL mode with foreign keys on, or PostgreSQL via psycopg."""
    url = normalise_url(url)
    if is_sqlite(url):
        path = sqlite_path(url)
        if path is not None:
            prepare_sqlite_file(path)  # 0600 before SQLite makes it; -wal/-shm take its mode
        engine = create_engine(
            url,
            connect_args={
                "check_same_thread": False,
                "timeout": 10,
                "factory": writer_factory(database=path),
            },
            pool_pre_ping=False,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        serialise_writes(engine)  # this process's writers queue on a lock, not in busy sleeps
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    from sqlalchemy.orm import sessionmaker  # here: the web edge's /healthz needs no ORM

    return sessionmaker(bind=engine, expire_on_commit=False)
