"""Block Kit's smallest pieces: the message value every module builds, a section, a context
line, a verbatim code block, and the escaping of untrusted text for mrkdwn."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

Block = dict[str, Any]


@dataclass(frozen=True)
class Message:
    text: str  # the notification / fallback text
    blocks: list[Block]
    attachments: list[dict[str, Any]] | None = None  # where Slack takes a table block


def section(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


# "@here" and friends typed as plain text: a word joiner after "@" keeps them from notifying.
_BARE_MENTION = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)
# Line breaks (to fake a line of our own), other controls, zero-width and bidi characters.
_NOT_INLINE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+")
_NOT_VERBATIM = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def escape_mrkdwn(text: str) -> str:
    """Untrusted text for mrkdwn: no links or mentions (<...>), no bare @here/@channel."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BARE_MENTION.sub("@\u2060", _NOT_VERBATIM.sub("\ufffd", escaped))


def escape_inline(text: str) -> str:
    """Untrusted text for one line of mrkdwn (a name, an error type, a stderr excerpt): it
    cannot start a line of its own or close the code span or bold it is shown in."""
    flat = _NOT_INLINE.sub(" ", text).strip()
    return escape_mrkdwn(flat).replace("`", "\u02cb").replace("*", "\u2217")


def preformatted(text: str) -> Block:
    """A code block (rich_text_preformatted keeps it verbatim, no mrkdwn escaping issues);
    terminal and bidi controls are replaced, since a run's output may carry them."""
    clean = _NOT_VERBATIM.sub("\ufffd", text.replace("\r\n", "\n"))
    return {
        "type": "rich_text",
        "elements": [
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": clean}]}
        ],
    }
