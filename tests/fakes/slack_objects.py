"""What the real Slack answers, written from its Web API docs and slackapi's SDK sources: the
error catalogue, the per-method rate-limit tiers, and file objects with their stub modes.

Written here (nothing copied); where Slack documents a shape only in prose, the shape follows
the prose and python-slack-sdk's handling of it."""

from __future__ import annotations

import time
from typing import Any

# --- errors -----------------------------------------------------------------------------------
# Errors that will not go away by calling again: the message, channel or token is gone, or the
# app lacks a right. Slack answers them with HTTP 200 and {"ok": false, "error": ...}.
PERMANENT_ERRORS = frozenset(
    {
        "message_not_found",  # chat.update / chat.delete: the message was deleted
        "cant_update_message",
        "edit_window_closed",
        "channel_not_found",
        "is_archived",
        "not_in_channel",
        "account_inactive",  # the bot user was deactivated (app uninstalled)
        "token_revoked",
        "token_expired",
        "invalid_auth",
        "not_authed",
        "no_permission",
        "missing_scope",
        "not_allowed_token_type",
        "team_access_not_granted",  # Enterprise Grid: the app is not granted this workspace
        "ekm_access_denied",
        "restricted_action",
        "msg_too_long",
        "invalid_blocks",
        "file_not_found",
        "file_deleted",
        "access_denied",
    }
)
# Errors worth trying again later, with the HTTP status Slack sends them with.
TRANSIENT_ERRORS: dict[str, int] = {
    "ratelimited": 429,  # with a Retry-After header
    "internal_error": 200,
    "fatal_error": 200,
    "service_unavailable": 503,
    "request_timeout": 200,
}

# --- rate limits --------------------------------------------------------------------------------
# Calls per minute per workspace and method (https://api.slack.com/apis/rate-limits): Tier 1
# 1+/min, Tier 2 20+/min, Tier 3 50+/min, Tier 4 100+/min. chat.postMessage is "special"
# (about one message per second per channel); it is modelled per channel at 60/min.
TIER_PER_MINUTE = {1: 1, 2: 20, 3: 50, 4: 100}
METHOD_TIERS: dict[str, int] = {
    "auth.test": 4,
    "chat.update": 3,
    "chat.postEphemeral": 4,
    "chat.getPermalink": 4,
    "views.open": 4,
    "files.info": 4,
    "files.getUploadURLExternal": 4,
    "files.completeUploadExternal": 4,
    "conversations.info": 3,
    "conversations.members": 4,
}
PER_CHANNEL_PER_MINUTE = {"chat.postMessage": 60}
# files.completeUploadExternal fails with internal_error above this many files in one call
# (python-slack-sdk#1653: 14 worked, 15 failed).
COMPLETE_UPLOAD_MAX_FILES = 14


class TierLimiter:
    """A sliding one-minute window per (team, method[, channel]), shortened by ``scale`` so a
    test can reach a limit in a fraction of a second (scale 60: a "minute" lasts one second)."""

    def __init__(self, *, scale: float) -> None:
        self.window = 60.0 / scale
        self._seen: dict[tuple[str, ...], list[float]] = {}

    def retry_after(self, *, team: str, method: str, channel: str | None) -> float:
        """0 when the call may go now (and counts it); else seconds until it may."""
        if method in PER_CHANNEL_PER_MINUTE:
            key: tuple[str, ...] = (team, method, channel or "")
            budget = PER_CHANNEL_PER_MINUTE[method]
        else:
            key = (team, method)
            budget = TIER_PER_MINUTE[METHOD_TIERS.get(method, 3)]
        now = time.monotonic()
        seen = [t for t in self._seen.get(key, []) if now - t < self.window]
        if len(seen) >= budget:
            self._seen[key] = seen
            return seen[0] + self.window - now
        seen.append(now)
        self._seen[key] = seen
        return 0.0


# --- file objects ---------------------------------------------------------------------------------


def hosted_file(
    *, file_id: str, name: str, size: int, mimetype: str, base: str, user: str = "U1"
) -> dict[str, Any]:
    """A file uploaded to Slack (``mode: hosted``), as message events and files.info carry it."""
    stem, _, ext = name.rpartition(".")
    url = f"{base}/files-pri/T1-{file_id}/{name}"
    return {
        "id": file_id,
        "created": int(time.time()),
        "timestamp": int(time.time()),
        "name": name,
        "title": stem or name,
        "mimetype": mimetype,
        "filetype": ext or "binary",
        "pretty_type": (ext or "binary").upper(),
        "user": user,
        "user_team": "T1",
        "editable": False,
        "size": size,
        "mode": "hosted",
        "is_external": False,
        "external_type": "",
        "is_public": True,
        "public_url_shared": False,
        "display_as_bot": False,
        "username": "",
        "url_private": url,
        "url_private_download": f"{base}/files-pri/T1-{file_id}/download/{name}",
        "permalink": f"https://test.slack.com/files/{user}/{file_id}/{name}",
        "has_rich_preview": False,
        "file_access": "visible",
    }


def hidden_by_limit_stub(file_id: str) -> dict[str, Any]:
    """A file older than the free plan's visible history: no name, no URLs."""
    return {"id": file_id, "mode": "hidden_by_limit"}


def tombstone_stub(file_id: str) -> dict[str, Any]:
    """A deleted file, as it stays in the message that shared it."""
    return {"id": file_id, "mode": "tombstone"}


def check_file_info_stub(file_id: str) -> dict[str, Any]:
    """A file Slack did not describe in the event (Slack Connect, some large shares): the app
    must call files.info for it."""
    return {"id": file_id, "file_access": "check_file_info", "created": int(time.time())}


def user_object(user_id: str, *, tz: str, team: str) -> dict[str, Any]:
    """A users.info ``user`` as Slack sends it (the fields Taskbot reads, and their neighbours)."""
    return {
        "id": user_id,
        "team_id": team,
        "name": user_id.lower(),
        "deleted": False,
        "real_name": f"Person {user_id}",
        "tz": tz,
        "tz_label": tz,
        "tz_offset": 0,
        "is_bot": False,
    }
