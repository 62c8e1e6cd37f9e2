"""Who is in a channel, asked of Slack with the workspace's bot token (for personal tokens)."""

from __future__ import annotations

import logging

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.oauth.installation_store import InstallationStore

from bot.slack.notifier import ClientSource
from bot.slack.outcomes import Uninstalled

logger = logging.getLogger(__name__)

MAX_PAGES = 50  # 200 members a page: channels up to 10,000 members
# Answers that will not change by asking again soon: nobody is "in" such a channel for us.
_GONE = frozenset(
    {"channel_not_found", "is_archived", "not_in_channel", "missing_scope", "token_revoked"}
)


class SlackMembers:
    """``conversations.members`` with the installation's (or the one) bot token, all pages."""

    def __init__(self, clients: ClientSource) -> None:
        self._clients = clients

    def members(
        self, *, team_id: str, enterprise_id: str | None, channel_id: str
    ) -> frozenset[str] | None:
        try:
            client = self._clients.for_team(team_id, enterprise_id, patient=False)
        except Uninstalled:
            return frozenset()
        found: set[str] = set()
        cursor: str | None = None
        try:
            for _ in range(MAX_PAGES):
                page = client.conversations_members(channel=channel_id, limit=200, cursor=cursor)
                found.update(str(m) for m in page.get("members") or [])
                cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
                if not cursor:
                    break
        except SlackApiError as exc:
            error = str(exc.response.get("error", ""))
            if error in _GONE:
                logger.info("channel %s of team %s: %s", channel_id, team_id, error)
                return frozenset()
            logger.warning("could not ask Slack who is in %s: %s", channel_id, error)
            return None
        except (SlackClientError, OSError) as exc:
            logger.warning("could not ask Slack who is in %s: %s", channel_id, exc)
            return None
        return frozenset(found)


def slack_members(
    *, bot_token: str, api_url: str, installations: InstallationStore | None
) -> SlackMembers:
    """Members over the one bot token, or each workspace's installation when there are many."""
    from bot.slack.clients import web_client

    default = web_client(token=None if installations else bot_token, base_url=api_url)
    return SlackMembers(ClientSource(default=default, installations=installations))
