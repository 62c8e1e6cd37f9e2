"""What both halves need of Slack: the bot's scopes, a Web API client that retries, the
installation store (multi-workspace install) and the start-up check of the bot token. Apart from
``bot.slack.app`` so that the web process, which only checks the token and acks, does not
import the slow half's flows, watcher and ticker."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)
from slack_sdk.oauth.installation_store import InstallationStore
from sqlalchemy import Engine

from bot.config import Settings
from bot.slack.keepalive import KeepAliveWebClient

BOT_SCOPES = (
    "commands",
    "chat:write",
    "files:read",
    "files:write",
    "channels:history",
    "groups:history",
    "im:history",
    "mpim:history",
    "app_mentions:read",
    "users:read",  # issue 18: a schedule's time zone
    # conversations.members (personal tokens) and users.conversations (the Home tab's channels)
    "channels:read",
    "groups:read",
    "im:read",
    "mpim:read",
)


def web_client(*, token: str | None, base_url: str) -> WebClient:
    """A Web API client that waits out 429s (Retry-After) and retries server errors."""
    return KeepAliveWebClient(
        token=token or None,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=6),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


def installations_of(settings: Settings, engine: Engine) -> InstallationStore | None:
    if not (settings.slack_client_id and settings.slack_client_secret):
        return None
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    return SQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=engine)


# auth.test errors that mean the token itself is wrong: they do not go away by waiting.
_BAD_TOKEN = frozenset(
    {
        "invalid_auth",
        "not_authed",
        "token_revoked",
        "token_expired",
        "account_inactive",
        "not_allowed_token_type",
        "invalid_token",
    }
)


@dataclass(frozen=True)
class SlackCheck:
    """The start-up check of the bot token: ``ok``; or ``fatal`` (a bad token) with a
    one-line ``message`` naming the setting; or neither (Slack unreachable for now)."""

    ok: bool
    fatal: bool = False
    message: str = ""


def check_slack(settings: Settings, *, timeout: float = 10.0) -> SlackCheck:
    """One ``auth.test`` with the bot token, without retries, classified for the operator."""
    if not settings.slack_bot_token:
        return SlackCheck(ok=True)  # multi-workspace install: tokens come per workspace
    base = (
        settings.slack_api_url
        if settings.slack_api_url.endswith("/")
        else settings.slack_api_url + "/"
    )
    client = WebClient(
        token=settings.slack_bot_token, base_url=base, timeout=int(timeout), retry_handlers=[]
    )
    sdk_logger = logging.getLogger("slack_sdk.web.base_client")
    level = sdk_logger.level
    sdk_logger.setLevel(logging.CRITICAL)  # the operator gets one line, from the caller
    try:
        client.auth_test()
    except SlackApiError as exc:
        error = str(exc.response.get("error", "")) if exc.response is not None else ""
        if error in _BAD_TOKEN:
            return SlackCheck(
                ok=False,
                fatal=True,
                message=f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth "
                "Token (xoxb-...) from OAuth & Permissions again.",
            )
        status = exc.response.status_code if exc.response is not None else "?"
        return SlackCheck(
            ok=False, message=f"Slack's auth.test failed at SLACK_API_URL={base} ({status} {error})"
        )
    except (OSError, ValueError) as exc:  # URLError, timeouts, refused connections, bad URL
        reason = getattr(exc, "reason", None) or exc
        return SlackCheck(
            ok=False, message=f"Slack is unreachable at SLACK_API_URL={base} ({reason})"
        )
    finally:
        sdk_logger.setLevel(level)
    return SlackCheck(ok=True)
