"""The MCP server as the web role mounts it at ``/mcp`` (``MCP_ENABLED``): the SDK is imported
here, only then. Its verifiers are ``API_TOKEN``'s and personal tokens'; its file fetcher is
Slack's guarded download with the bot token (Slack's hosts only), when there is a single
workspace's token."""

from __future__ import annotations

import logging
import posixpath
from typing import Any
from urllib.parse import urlparse

from bot.services.container import Services
from bot.services.errors import ServiceError
from bot.services.principal import PrincipalKind

logger = logging.getLogger(__name__)


def slack_fetch(services: Services) -> Any:
    """A Slack file URL -> (name, bytes), or None without a bot token (multi-workspace)."""
    settings = services.settings
    if not settings.slack_bot_token:
        return None
    from bot.slack.clients import web_client
    from bot.slack.files import SlackFiles

    client = web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    files = SlackFiles(
        api_url=settings.slack_api_url, max_bytes=settings.sandbox_max_input_mb * 2**20
    )

    def fetch(url: str) -> tuple[str, bytes]:
        name = posixpath.basename(urlparse(url).path) or "input"
        return files.download(client, {"name": name, "url_private_download": url})

    return fetch


def personal_token_verifier(services: Services) -> Any:
    """Personal tokens (``/task token``), checked like the API's: revoked and expired ones are
    refused at once; the person's workspace and scopes go with them."""
    from bot.mcp.auth import OPERATOR, Principal

    def verify(token: str) -> Principal | None:
        try:
            who = services.tokens.authenticate(token)
        except ServiceError:
            return None
        if who.kind is PrincipalKind.OPERATOR:
            return Principal(user_id=OPERATOR, team_id=None)
        return Principal(
            user_id=who.user_id,
            team_id=who.team_id,
            scopes=frozenset(scope.value for scope in who.scopes),
        )

    return verify


def mcp_app(services: Services) -> Any:
    from bot.mcp.auth import api_token_verifier, chain
    from bot.mcp.server import McpApp

    return McpApp(
        services,
        verify=chain(
            api_token_verifier(services.settings.api_token), personal_token_verifier(services)
        ),
        fetch=slack_fetch(services),
    )
