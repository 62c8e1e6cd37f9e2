"""The slow half of a Slack interaction as a plain value, so it can run in this process or be
handed to the flow process (``bot.slack.flowproc``), away from the threads that ack."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from bot.slack.flows import Origin


@dataclass(frozen=True)
class Reply:
    """How to tell the user something only they see: a response_url, or an ephemeral message."""

    response_url: str | None = None
    channel_id: str = ""
    user_id: str = ""
    thread_ts: str | None = None


@dataclass(frozen=True)
class Job:
    # create, run_command, run_button, run_modal, thread_message, show, list or usage
    kind: str
    origin: Origin
    reply: Reply
    params: Mapping[str, Any] = field(default_factory=dict)
    delivery: tuple[str, str] | None = None


class Dispatcher(Protocol):
    def dispatch(self, job: Job) -> None: ...
