"""Shared fixtures: databases (an SQLite file; PostgreSQL), Redis, the fake model server.

PostgreSQL and Redis are real servers. Without ``TEST_POSTGRES_URL`` (or ``TEST_DATABASE_URL``)
and ``TEST_REDIS_URL`` the run starts private ones of its own (``tests/servers.py``: a unix
socket in a temporary directory, a free loopback port), the first time a test needs them, and
stops them at the end; it never touches a server it did not start. With the URLs, it uses
those servers (a fresh database per test, dropped afterwards).
"""

from __future__ import annotations

import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from tests.fakes.openai_server import FakeOpenAIServer
from tests.servers import PrivatePostgres, PrivateRedis


def pytest_configure(config: pytest.Config) -> None:
    # A run started in the background by a non-interactive shell has SIGINT ignored, and every
    # process it starts inherits that: the Ctrl-C tests need it delivered as a terminal does.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def _given(*names: str) -> str | None:
    for name in names:
        if os.environ.get(name):
            return os.environ[name]
    return None


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """A URL to a database on a PostgreSQL server where this run may create databases."""
    given = _given("TEST_POSTGRES_URL", "TEST_DATABASE_URL")
    if given:
        yield given
        return
    server = PrivatePostgres()
    try:
        server.start()
        yield server.url("postgres")
    finally:
        server.close()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A Redis database for this run (db 9 of the operator's server, or a private server)."""
    given = _given("TEST_REDIS_URL")
    if given:
        yield given
        return
    server = PrivateRedis()
    try:
        server.start()
        yield server.url(9)
    finally:
        server.close()


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'taskbot.db'}"


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh, empty database on the test PostgreSQL server, dropped afterwards."""
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    name = f"taskbot_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        admin.dispose()
        pytest.fail(f"PostgreSQL at {postgres_admin_url} is not usable: {exc}")
    url = make_url(postgres_admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest) -> str:
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url"))
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAIServer]:
    server = FakeOpenAIServer().start()
    try:
        yield server
    finally:
        server.stop()
