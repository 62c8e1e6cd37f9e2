"""Alembic, driven from code: ``python -m bot migrate`` and the tests call these.

Alembic is imported only when a schema is to be changed or its state is in doubt: asking
whether a database is current is one SELECT and a look at the revision files, so a process
that starts on a current schema (the web process) does not hold alembic's 11 MiB.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError

from storage.db import is_sqlite
from storage.errors import SchemaOutOfDate

if TYPE_CHECKING:
    from alembic.config import Config

logger = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).with_name("migrations")
_REVISION = re.compile(r'^(down_revision|revision)\s*=\s*(?:"([^"]*)"|None)\s*$', re.MULTILINE)


def alembic_config(engine: Engine) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    from alembic import command

    command.downgrade(alembic_config(engine), revision)


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision(engine: Engine) -> str | None:
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def file_head() -> str | None:
    """The one revision no other revision file names as its ``down_revision``, read from the
    files as written (``revision = "NNNN"``); None when that reading is not clear-cut."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS / "versions").glob("*.py"):
        found = {m.group(1): m.group(2) for m in _REVISION.finditer(path.read_text())}
        if not found.get("revision"):
            return None
        revisions.add(found["revision"])
        if found.get("down_revision"):
            parents.add(found["down_revision"])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _stamped(engine: Engine) -> list[str] | None:
    try:
        with engine.connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version"))
            return [str(row[0]) for row in rows]
    except DBAPIError:
        return None  # no version table yet, or not readable: alembic decides


def is_current(engine: Engine) -> bool:
    head = file_head()
    if head is not None and _stamped(engine) == [head]:
        return True
    return current_revision(engine) == head_revision(engine)


def prepare(engine: Engine, *, migrate_command: str) -> None:
    """SQLite (one machine) upgrades itself; PostgreSQL is migrated by the release step, and
    ``SchemaOutOfDate`` names ``migrate_command`` when it was not."""
    if is_sqlite(str(engine.url)):
        if not is_current(engine):
            logger.info("upgrading the SQLite schema to %s", head_revision(engine))
            upgrade(engine)
        return
    if not is_current(engine):
        raise SchemaOutOfDate(
            f"The database schema is not up to date: run `{migrate_command}` "
            "(the Procfile's release step does this on deploy)."
        )
