"""Files in and out of Slack: guarded downloads, uploads to a thread."""

from __future__ import annotations

import http.client
import logging
import time
import urllib.error
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email.message import Message
from typing import Any
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import InvalidInput
from bot.slack.keepalive import fetch
from bot.slack.outcomes import classify

logger = logging.getLogger(__name__)

SLACK_FILE_HOST = "files.slack.com"
# files.completeUploadExternal fails above about 10-14 files per call (python-slack-sdk#1653);
# 10 is also the most a file_input takes, and what Slack's own clients send at once.
FILES_PER_UPLOAD = 10
UPLOAD_TRIES = 3
MAX_REDIRECTS = 5
_STUBS = {
    "hidden_by_limit": (
        "{subject} is hidden by your workspace's plan (files older than its visible history "
        "cannot be read by apps). Upload it again."
    ),
    "tombstone": "{subject} was deleted from Slack. Upload it again.",
}


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes


class SlackFiles:
    """Downloads send the bot token only to the Web API host and Slack's file host."""

    def __init__(self, *, api_url: str, max_bytes: int, timeout: float = 30.0) -> None:
        # Exact origins (scheme, host, port): Slack's file host over https, and the Web API's
        # origin as configured (https for Slack; a test Slack's http base is the one exception).
        self.allowed_origins = frozenset({_origin(api_url), ("https", SLACK_FILE_HOST, 443)})
        self.max_bytes = max_bytes
        self.timeout = timeout

    def _describe(self, client: WebClient, file: Mapping[str, Any]) -> Mapping[str, Any]:
        _check_stub(file)
        if file.get("url_private_download") or file.get("url_private"):
            return file
        # Some deliveries carry only the id (file_access: check_file_info).
        try:
            info = client.files_info(file=str(file.get("id", "")))
        except SlackApiError as exc:
            error = exc.response.get("error")
            if error in ("file_deleted", "file_not_found"):
                raise InvalidInput(_STUBS["tombstone"].format(subject="The file")) from None
            raise InvalidInput(
                f"I could not read the file ({error}). Is the app installed with files:read?"
            ) from None
        described = info.get("file")
        if not isinstance(described, Mapping):
            raise InvalidInput("Slack did not describe the file.")
        _check_stub(described)
        return described

    def _allowed(self, url: str) -> bool:
        try:
            return _origin(url) in self.allowed_origins
        except ValueError:  # a port that is not a number
            return False

    def _fetch(self, url: str, token: str | None, name: str) -> tuple[Message, bytes]:
        """GET ``url`` with the token (on a kept connection, ``bot.slack.keepalive``), following
        redirects by hand: every hop must be one of Slack's hosts (the token goes nowhere
        else), or the download is refused. (headers, at most ``max_bytes + 1`` bytes)."""
        for _ in range(MAX_REDIRECTS + 1):
            if not self._allowed(url):
                logger.warning("refusing to fetch a file from %s", urlparse(url).hostname)
                raise InvalidInput(f"`{name}` is not hosted by Slack; I will not fetch it.")
            status, headers, data = fetch(
                url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self.timeout,
                limit=self.max_bytes,
            )
            location = headers.get("Location") if status in _REDIRECTS else None
            if location is not None:
                url = urllib.parse.urljoin(url, location)
                continue
            if not 200 <= status < 300:  # a 304, or a redirect to nowhere: not the file
                raise InvalidInput(f"I could not download `{name}`: Slack answered {status}.")
            return headers, data
        raise InvalidInput(f"I could not download `{name}`: too many redirects.")

    def download(self, client: WebClient, file: Mapping[str, Any]) -> tuple[str, bytes]:
        """The file's name and bytes, or an ``InvalidInput`` that says what is wrong."""
        meta = self._describe(client, file)
        name = str(meta.get("name") or meta.get("title") or "input")
        declared = meta.get("size")
        if isinstance(declared, int) and declared > self.max_bytes:
            raise InvalidInput(
                f"`{name}` is too large: {declared / 2**20:.1f} MiB, the limit is "
                f"{self.max_bytes / 2**20:.0f} MiB."
            )
        url = str(meta.get("url_private_download") or meta.get("url_private") or "")
        try:
            headers, data = self._fetch(url, client.token, name)
        except urllib.error.URLError as exc:
            raise InvalidInput(f"I could not download `{name}`: {exc.reason}") from None
        except (OSError, http.client.HTTPException) as exc:
            raise InvalidInput(f"I could not download `{name}`: {exc}") from None
        kind = headers.get("content-type", "")
        if kind.startswith("text/html") and not name.lower().endswith((".html", ".htm")):
            # Slack answers 200 with its login page when the token cannot read files.
            raise InvalidInput(
                f"Slack would not give me `{name}` (it sent a login page). Reinstall "
                "the app with the files:read scope."
            )
        if len(data) > self.max_bytes:
            raise InvalidInput(f"`{name}` is too large: over {self.max_bytes / 2**20:.0f} MiB.")
        return name, data


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in; raises ValueError for
    a malformed port. A URL with user info never matches an allowed origin."""
    parsed = urlparse(url)
    scheme = parsed.scheme.lower()
    port = parsed.port or {"https": 443, "http": 80}.get(scheme)
    host = (parsed.hostname or "") if "@" not in parsed.netloc else ""
    return scheme, host, port


_REDIRECTS = (301, 302, 303, 307, 308)


def _check_stub(file: Mapping[str, Any]) -> None:
    reason = _STUBS.get(str(file.get("mode") or ""))
    if reason is not None:
        name = file.get("name")
        raise InvalidInput(reason.format(subject=f"`{name}`" if name else "The file"))


@dataclass(frozen=True)
class Undelivered:
    filename: str
    error: str


def upload_to_thread(
    client: WebClient, *, channel: str, thread_ts: str, uploads: Sequence[Upload], comment: str
) -> list[Undelivered]:
    """Upload files to a thread in calls within Slack's per-call limit, trying each call again
    when Slack fails for now; the thread is told which files could not be delivered."""
    undelivered: list[Undelivered] = []
    for start in range(0, len(uploads), FILES_PER_UPLOAD):
        batch = uploads[start : start + FILES_PER_UPLOAD]
        error = _upload_batch(
            client,
            channel=channel,
            thread_ts=thread_ts,
            batch=batch,
            comment=comment if start == 0 else None,
        )
        if error is not None:
            undelivered.extend(Undelivered(u.filename, error) for u in batch)
    if undelivered:
        names = ", ".join(f"`{u.filename}`" for u in undelivered)
        errors = ", ".join(sorted({u.error for u in undelivered}))
        try:
            client.chat_postMessage(
                channel=channel,
                thread_ts=thread_ts,
                text=f":warning: I could not deliver {names} to this thread (Slack: {errors}).",
            )
        except SlackApiError:
            logger.exception("could not say in the thread that files were not delivered")
    return undelivered


def _upload_batch(
    client: WebClient,
    *,
    channel: str,
    thread_ts: str,
    batch: Sequence[Upload],
    comment: str | None,
) -> str | None:
    """One files_upload_v2 call, tried again when Slack fails for now; None when delivered,
    else Slack's error. A failed call shares nothing, so trying it again posts no doubles."""
    for attempt in range(UPLOAD_TRIES):
        try:
            client.files_upload_v2(
                channel=channel,
                thread_ts=thread_ts,
                initial_comment=comment,
                file_uploads=[
                    {"content": u.content, "filename": u.filename, "title": u.filename}
                    for u in batch
                ],
            )
            return None
        except Exception as exc:
            failure = classify(exc)
            logger.warning("uploading %d files failed: %s", len(batch), failure.error)
            if failure.permanent or attempt == UPLOAD_TRIES - 1:
                return failure.error
            time.sleep(failure.retry_after or 2.0**attempt)
    return None
