"""Storage failures the edges turn into a clear answer."""

from __future__ import annotations


class StorageUnavailable(Exception):
    """The database cannot be reached right now (restarting, network, disk)."""

    def __str__(self) -> str:
        return "The database is unreachable right now. Try again in a minute."


class SchemaOutOfDate(RuntimeError):
    """The database needs ``python -m bot migrate``."""
