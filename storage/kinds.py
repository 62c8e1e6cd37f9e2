"""The stored kinds (states, types, statuses) as plain enums, without the ORM: the web edge and
the flow process's messages name them without loading SQLAlchemy's ORM (``storage.models``
maps them onto columns)."""

from __future__ import annotations

import enum


class TaskState(enum.StrEnum):
    GENERATING = "generating"
    READY = "ready"
    FAILED = "failed"


class VersionState(enum.StrEnum):
    READY = "ready"  # its checks passed (or it has none): it may become current
    DRAFT = "draft"  # its checks never passed: kept, but never current


class RequestKind(enum.StrEnum):
    """What asked for a version: the task's description, or a reply refining it."""

    CREATE = "create"
    REFINE = "refine"


class ResultKind(enum.StrEnum):
    """How a run's stored result reads."""

    JSON = "json"
    TEXT = "text"
    BYTES = "bytes"
    NONE = "none"


class TaskType(enum.StrEnum):
    PASSTHROUGH = "passthrough"  # takes an input file
    GENERATOR = "generator"  # takes none


class RunStatus(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    TIMED_OUT = "timed_out"
    KILLED = "killed"

    @property
    def final(self) -> bool:
        return self not in (RunStatus.QUEUED, RunStatus.RUNNING)
