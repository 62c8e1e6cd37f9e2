"""The slow half's Slack side: its clients, pools and the run-message watcher, and the
start-up check of the bot token. The Bolt app itself is ``bot.slack.async_app``."""

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

from bot.config import Settings
from bot.services.container import Services
from bot.services.fairness import FairPool
from bot.services.replies import RunReplies
from bot.slack import direct, shortcut
from bot.slack.dispatch import Handlers
from bot.slack.files import SlackFiles
from bot.slack.flows import SlackFlows
from bot.slack.home import HomeTab
from bot.slack.messages import Message, Revoked
from bot.slack.notifier import ClientSource, RunWatcher
from bot.slack.outcomes import Uninstalled
from bot.slack.scheduler import ScheduleTicker
from bot.slack.sweep import GenerationSweep
from bot.slack.tracked import TrackedPool

logger = logging.getLogger(__name__)

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
    return WebClient(
        token=token or None,
        base_url=base_url if base_url.endswith("/") else base_url + "/",
        retry_handlers=[
            ConnectionErrorRetryHandler(max_retry_count=2),
            RateLimitErrorRetryHandler(max_retry_count=6),
            ServerErrorRetryHandler(max_retry_count=2),
        ],
    )


@dataclass
class FlowRuntime:
    """The slow half: flows on Taskbot's own pools, and the watcher that keeps run messages
    current. It runs in the web process, or alone in the flow process (``bot.slack.flowproc``)."""

    flows: SlackFlows
    handlers: Handlers
    watcher: RunWatcher
    clients: ClientSource
    workers: TrackedPool
    generators: FairPool
    sweep: GenerationSweep  # abandoned generations failed, their root messages updated
    home: HomeTab
    ticker: ScheduleTicker | None = None  # issue 18

    def dispatch(self, message: Message) -> None:
        origin = message.origin
        if isinstance(message, Revoked):
            self.clients.revoke(origin.team_id, origin.enterprise_id)
            return
        try:
            client = self.clients.for_team(origin.team_id, origin.enterprise_id)
        except Uninstalled:
            logger.warning("a request from team %s, which has no installation", origin.team_id)
            return
        self.handlers.handle(message, client)

    def start(self) -> None:
        self.watcher.start()
        self.sweep.start()
        if self.ticker is not None:
            self.ticker.start()

    def close(self) -> None:
        if self.ticker is not None:
            self.ticker.stop()
        self.sweep.stop()
        self.home.close()
        self.watcher.stop()
        self.workers.shutdown(wait=True, cancel_futures=True)
        self.generators.shutdown(wait=False, cancel_futures=True)


def installations_of(services: Services) -> InstallationStore | None:
    settings = services.settings
    if not (settings.slack_client_id and settings.slack_client_secret):
        return None
    from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

    return SQLAlchemyInstallationStore(client_id=settings.slack_client_id, engine=services.engine)


def _client(services: Services, client: WebClient | None) -> WebClient:
    settings = services.settings
    multi = bool(settings.slack_client_id and settings.slack_client_secret)
    return client or web_client(
        token=None if multi else settings.slack_bot_token, base_url=settings.slack_api_url
    )


def build_flows(services: Services, *, client: WebClient | None = None) -> FlowRuntime:
    settings = services.settings
    clients = ClientSource(
        default=_client(services, client), installations=installations_of(services)
    )
    workers = TrackedPool(max_workers=16, thread_name_prefix="taskbot-slack")
    generators = FairPool(
        workers=8,
        per_user=settings.fair_user_generations,
        per_channel=settings.fair_channel_generations,
    )
    watcher = RunWatcher(
        replies=RunReplies(services.uow),
        clients=clients,
        signal=services.signal,
        run_errors=services.tasks.run_errors,
    )
    files = SlackFiles(
        api_url=settings.slack_api_url, max_bytes=settings.sandbox_max_input_mb * 2**20
    )
    flows = SlackFlows(
        services=services,
        files=files,
        workers=workers,
        generators=generators,
        on_run_queued=watcher.poke,
    )
    sweep = GenerationSweep(housekeeping=services.housekeeping, clients=clients)
    ticker = ScheduleTicker(flows, clients, every=settings.schedule_check_seconds)
    home = HomeTab(flows, clients)
    extra = {**home.handlers(), **shortcut.handlers(flows), **direct.handlers(flows)}
    handlers = Handlers(flows, extra=extra)
    return FlowRuntime(flows, handlers, watcher, clients, workers, generators, sweep, home, ticker)


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
