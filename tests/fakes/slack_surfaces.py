"""The mock Slack Web API's surfaces beyond chat messages: views (the Home tab, modals),
conversation membership, and message streaming, with the argument checks and errors Slack
documents for each (docs.slack.dev/reference/methods/...)."""

from __future__ import annotations

import itertools
import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

Answer = tuple[int, dict[str, str], dict[str, Any]]

SURFACE_METHODS = frozenset(
    {
        "views.publish",
        "views.open",
        "views.update",
        "users.conversations",
        "chat.startStream",
        "chat.appendStream",
        "chat.stopStream",
    }
)
VIEW_MAX_BLOCKS = 100  # modals and Home tabs
TITLE_MAX = 24  # a modal's title, submit and close labels
MARKDOWN_MAX = 12_000  # markdown_text of each streaming call
CHUNK_TYPES = frozenset({"markdown_text", "task_update", "plan_update", "blocks"})
TASK_STATUSES = frozenset({"pending", "in_progress", "complete", "error"})


def _ok(**fields: Any) -> Answer:
    return 200, {}, {"ok": True, **fields}


def _error(error: str, **fields: Any) -> Answer:
    return 200, {}, {"ok": False, "error": error, **fields}


@dataclass
class Surfaces:
    """State behind the methods: who is in which channel, what each Home tab shows, streams."""

    members: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    homes: dict[str, dict[str, Any]] = field(default_factory=dict)  # user -> published view
    streams: dict[tuple[str, str], str] = field(default_factory=dict)  # (channel, ts) -> state
    streaming_off: bool = False  # the workspace has no streaming (older plans, the method 404s)
    _ts: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def join(self, channel: str, *users: str) -> None:
        self.members[channel].update(users)

    def answer(self, method: str, params: dict[str, Any], messages: set[tuple[str, str]]) -> Answer:
        if method == "users.conversations":
            return self._conversations(params)
        if method in ("views.publish", "views.open", "views.update"):
            return self._view(method, params)
        return self._stream(method, params, messages)

    def _conversations(self, params: dict[str, Any]) -> Answer:
        user = str(params.get("user") or "")
        if not user:
            return _error("invalid_arguments")
        if not user.startswith(("U", "W")):
            return _error("user_not_found")
        channels = sorted(c for c, who in self.members.items() if user in who)
        listed = [{"id": c, "is_channel": c.startswith("C"), "is_member": True} for c in channels]
        return _ok(channels=listed, response_metadata={"next_cursor": ""})

    def _view(self, method: str, params: dict[str, Any]) -> Answer:
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                return _error("invalid_arguments")
        if not isinstance(view, dict) or not isinstance(view.get("blocks"), list):
            return _error("invalid_arguments")
        if len(view["blocks"]) > VIEW_MAX_BLOCKS:
            return _error("invalid_arguments")
        if method == "views.publish":
            user = str(params.get("user_id") or "")
            if not user or view.get("type") != "home":
                return _error("invalid_arguments")
            self.homes[user] = view
            return _ok(view={"id": f"VH{user}", **view})
        if method == "views.open" and not params.get("trigger_id"):
            return _error("invalid_arguments")
        if view.get("type") != "modal":
            return _error("invalid_arguments")
        for key in ("title", "submit", "close"):
            text = (view.get(key) or {}).get("text", "")
            if len(text) > TITLE_MAX:
                return _error("invalid_arguments")
        if not (view.get("title") or {}).get("text"):
            return _error("invalid_arguments")
        return _ok(view={"id": f"VM{next(self._ts)}", **view})

    def _stream(
        self, method: str, params: dict[str, Any], messages: set[tuple[str, str]]
    ) -> Answer:
        if self.streaming_off:
            return _error("unknown_method")
        channel = str(params.get("channel") or "")
        if not channel:
            return _error("channel_not_found")
        if len(str(params.get("markdown_text") or "")) > MARKDOWN_MAX:
            return _error("msg_too_long")
        chunks = params.get("chunks")
        if isinstance(chunks, str):
            chunks = json.loads(chunks)
        for chunk in chunks or []:
            if chunk.get("type") not in CHUNK_TYPES:
                return _error("invalid_chunks")
            if chunk["type"] == "task_update" and (
                not chunk.get("id")
                or not chunk.get("title")
                or chunk.get("status") not in TASK_STATUSES
            ):
                return _error("invalid_chunks")
        if method == "chat.startStream":
            thread = params.get("thread_ts")
            if not thread:
                return _error("invalid_arguments")
            if not channel.startswith("D") and not (
                params.get("recipient_user_id") and params.get("recipient_team_id")
            ):
                return _error("missing_recipient_user_id")
            ts = f"1800{next(self._ts):06d}.000300"
            self.streams[(channel, ts)] = "streaming"
            messages.add((channel, ts))
            return _ok(channel=channel, ts=ts)
        key = (channel, str(params.get("ts") or ""))
        if key not in self.streams:
            return _error("message_not_found")
        if self.streams[key] != "streaming":
            return _error("message_not_in_streaming_state")
        if method == "chat.stopStream":
            self.streams[key] = "stopped"
            return _ok(channel=channel, ts=key[1], message={"ts": key[1]})
        if not params.get("markdown_text") and not chunks:
            return _error("invalid_arguments")
        return _ok(channel=channel, ts=key[1])
