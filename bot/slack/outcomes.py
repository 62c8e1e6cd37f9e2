"""What a failed Slack call means for trying again: Slack's answer sorted into "for good" (the
message, channel or token is gone; the app lacks a right) and "for now" (rate limited, Slack's
own trouble, the network), with the wait Slack asked for."""

from __future__ import annotations

from dataclasses import dataclass

from slack_sdk.errors import SlackApiError

# Slack's errors that a later call may not repeat (https://api.slack.com/apis/rate-limits and
# each method's error list). Every other ``ok: false`` answer is for good: it names something
# about the request or the workspace that calling again cannot change.
TRANSIENT_ERRORS = frozenset(
    {"ratelimited", "internal_error", "fatal_error", "service_unavailable", "request_timeout"}
)


class Uninstalled(LookupError):
    """The workspace has no installation (uninstalled, or its bot token revoked)."""


@dataclass(frozen=True)
class Failure:
    error: str  # Slack's error code, or what went wrong on the way
    permanent: bool
    retry_after: float | None = None  # seconds, when Slack said how long to wait (429)


def _header(headers: object, name: str) -> str | None:
    if not isinstance(headers, dict):
        return None
    for key, value in headers.items():
        if str(key).lower() == name:
            return str(value[0] if isinstance(value, list) and value else value)
    return None


def classify(exc: BaseException) -> Failure:
    if isinstance(exc, Uninstalled):
        return Failure("app_uninstalled", permanent=True)
    if not isinstance(exc, SlackApiError):
        return Failure(type(exc).__name__, permanent=False)  # the network, a timeout
    response = exc.response
    status = int(getattr(response, "status_code", 200) or 200)
    data = getattr(response, "data", None)
    error = str(data.get("error") or "") if isinstance(data, dict) else ""
    error = error or f"http_{status}"
    if status == 429:
        try:
            wait = float(_header(getattr(response, "headers", None), "retry-after") or 1)
        except ValueError:
            wait = 1.0
        return Failure("ratelimited", permanent=False, retry_after=max(wait, 0.0))
    if status >= 500 or error in TRANSIENT_ERRORS:
        return Failure(error, permanent=False)
    return Failure(error, permanent=True)
