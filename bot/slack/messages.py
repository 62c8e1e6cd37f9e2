"""What the ack half hands the slow half: one frozen value per kind of request.

The values are plain (strings, numbers, tuples, mappings from the Slack payload) so they cross
the pipe to the flow process (``bot.roles.flow``) as they are; the slow half dispatches them by
type (``bot.slack.dispatch``), never by a string key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from storage.kinds import TaskType


@dataclass(frozen=True)
class Origin:
    team_id: str
    enterprise_id: str | None
    channel_id: str
    user_id: str


@dataclass(frozen=True)
class Reply:
    """How to tell the user something only they see: a response_url, or an ephemeral message."""

    response_url: str | None = None
    channel_id: str = ""
    user_id: str = ""
    thread_ts: str | None = None


Delivery = tuple[str, str]  # (kind, key): what a retry of a delivery would carry again


@dataclass(frozen=True, kw_only=True)
class Message:
    """The fields every request from Slack carries."""

    origin: Origin
    reply: Reply
    delivery: Delivery | None = None


@dataclass(frozen=True, kw_only=True)
class CreateTask(Message):
    description: str
    task_type: TaskType
    direct: bool = False


@dataclass(frozen=True, kw_only=True)
class RunCommand(Message):
    ref: str
    text: str | None
    trigger_id: str


@dataclass(frozen=True, kw_only=True)
class RunButton(Message):
    task_id: str
    trigger_id: str


@dataclass(frozen=True, kw_only=True)
class RunModal(Message):
    metadata: str
    files: Sequence[Mapping[str, Any]]


@dataclass(frozen=True, kw_only=True)
class ThreadMessage(Message):
    event: Mapping[str, Any]


@dataclass(frozen=True, kw_only=True)
class ShowTask(Message):
    ref: str
    version: int | None


@dataclass(frozen=True, kw_only=True)
class ListTasks(Message):
    pass


@dataclass(frozen=True, kw_only=True)
class DeleteAsk(Message):
    ref: str


@dataclass(frozen=True, kw_only=True)
class DeleteTask(Message):
    task_id: str


@dataclass(frozen=True, kw_only=True)
class Spend(Message):
    days: int = 1


@dataclass(frozen=True, kw_only=True)
class Usage(Message):
    text: str


@dataclass(frozen=True, kw_only=True)
class Revoked(Message):
    """Slack said the app was uninstalled from the origin's workspace (or its token revoked)."""


class Dispatcher(Protocol):
    def dispatch(self, message: Message) -> None: ...
