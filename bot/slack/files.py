"""Files in and out of Slack: guarded downloads, uploads to a thread."""

from __future__ import annotations

import logging
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import InvalidInput

logger = logging.getLogger(__name__)

SLACK_FILE_HOST = "files.slack.com"


@dataclass(frozen=True)
class Upload:
    filename: str
    content: bytes


class SlackFiles:
    """Downloads send the bot token only to the Web API host and Slack's file host."""

    def __init__(self, *, api_url: str, max_bytes: int, timeout: float = 30.0) -> None:
        host = urlparse(api_url).hostname or "slack.com"
        self.allowed_hosts = frozenset({host, SLACK_FILE_HOST})
        self.max_bytes = max_bytes
        self.timeout = timeout

    def _describe(self, client: WebClient, file: Mapping[str, Any]) -> Mapping[str, Any]:
        if file.get("url_private_download") or file.get("url_private"):
            return file
        # Some deliveries carry only the id (file_access: check_file_info).
        try:
            info = client.files_info(file=str(file.get("id", "")))
        except SlackApiError as exc:
            raise InvalidInput(
                f"I could not read the file ({exc.response.get('error')}). "
                "Is the app installed with files:read?"
            ) from None
        described = info.get("file")
        if not isinstance(described, Mapping):
            raise InvalidInput("Slack did not describe the file.")
        return described

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
        parsed = urlparse(url)
        if parsed.scheme not in ("https", "http") or parsed.hostname not in self.allowed_hosts:
            logger.warning("refusing to fetch a file from %s", parsed.hostname)
            raise InvalidInput(f"`{name}` is not hosted by Slack; I will not fetch it.")
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {client.token}"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                kind = response.headers.get("content-type", "")
                if kind.startswith("text/html") and not name.lower().endswith((".html", ".htm")):
                    # Slack answers 200 with its login page when the token cannot read files.
                    raise InvalidInput(
                        f"Slack would not give me `{name}` (it sent a login page). Reinstall "
                        "the app with the files:read scope."
                    )
                data = response.read(self.max_bytes + 1)
        except urllib.error.URLError as exc:
            raise InvalidInput(f"I could not download `{name}`: {exc.reason}") from None
        if len(data) > self.max_bytes:
            raise InvalidInput(f"`{name}` is too large: over {self.max_bytes / 2**20:.0f} MiB.")
        return name, data


def upload_to_thread(
    client: WebClient, *, channel: str, thread_ts: str, uploads: Sequence[Upload], comment: str
) -> None:
    if not uploads:
        return
    client.files_upload_v2(
        channel=channel,
        thread_ts=thread_ts,
        initial_comment=comment,
        file_uploads=[
            {"content": u.content, "filename": u.filename, "title": u.filename} for u in uploads
        ],
    )
