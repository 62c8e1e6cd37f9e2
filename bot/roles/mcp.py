"""The MCP server as the web role mounts it at ``/mcp`` (``MCP_ENABLED``): the SDK is imported
here, only then. Its verifier is ``API_TOKEN``'s; its file fetcher is Slack's guarded download
with the bot token (Slack's hosts only), when there is a single workspace's token."""

from __future__ import annotations

import logging
import posixpath
from typing import Any
from urllib.parse import urlparse

from bot.services.container import Services

logger = logging.getLogger(__name__)


def slack_fetch(services: Services) -> Any:
    """A Slack file URL -> (name, bytes), or None without a bot token (multi-workspace)."""
    settings = services.settings
    if not settings.slack_bot_token:
        return None
    from bot.slack.app import web_client
    from bot.slack.files import SlackFiles

    client = web_client(token=settings.slack_bot_token, base_url=settings.slack_api_url)
    files = SlackFiles(
        api_url=settings.slack_api_url, max_bytes=settings.sandbox_max_input_mb * 2**20
    )

    def fetch(url: str) -> tuple[str, bytes]:
        name = posixpath.basename(urlparse(url).path) or "input"
        return files.download(client, {"name": name, "url_private_download": url})

    return fetch


def mcp_app(services: Services) -> Any:
    from bot.mcp.auth import api_token_verifier
    from bot.mcp.server import McpApp

    if not services.settings.api_token:
        logger.warning("MCP_ENABLED is set but API_TOKEN is not: /mcp refuses every request")
    return McpApp(
        services,
        verify=api_token_verifier(services.settings.api_token),
        fetch=slack_fetch(services),
    )
