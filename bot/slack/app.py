"""Builds the Bolt app, its clients, the executor for slow work and the run-message watcher."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_bolt.oauth.oauth_settings import OAuthSettings
from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
    ServerErrorRetryHandler,
)

from bot.composition import Services
from bot.slack.files import SlackFiles
from bot.slack.flows import SlackFlows
from bot.slack.listeners import register_listeners
from bot.slack.notifier import ClientSource, RunWatcher

logger = logging.getLogger(__name__)

BOT_SCOPES = (
    "commands",
    "chat:write",
    "files:read",
    "files:write",
    "channels:history",
    "groups:history",
    "im:history",
    "app_mentions:read",
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
class SlackRuntime:
    app: App
    flows: SlackFlows
    watcher: RunWatcher
    workers: ThreadPoolExecutor
    generators: ThreadPoolExecutor
    handler: SlackRequestHandler

    def start(self) -> None:
        self.watcher.start()

    def close(self) -> None:
        self.watcher.stop()
        self.workers.shutdown(wait=True, cancel_futures=True)
        self.generators.shutdown(wait=False, cancel_futures=True)


def build_slack(services: Services, *, client: WebClient | None = None) -> SlackRuntime:
    settings = services.settings
    multi = bool(settings.slack_client_id and settings.slack_client_secret)
    client = client or web_client(
        token=None if multi else settings.slack_bot_token, base_url=settings.slack_api_url
    )
    installations = None
    kwargs: dict[str, object] = {}
    if multi:
        from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore
        from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

        installations = SQLAlchemyInstallationStore(
            client_id=settings.slack_client_id, engine=services.engine
        )
        kwargs["installation_store"] = installations
        kwargs["oauth_settings"] = OAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            installation_store=installations,
            state_store=SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=services.engine),
            install_path="/slack/install",
            redirect_uri_path="/slack/oauth_redirect",
        )
    app = App(
        signing_secret=settings.slack_signing_secret or None,
        request_verification_enabled=bool(settings.slack_signing_secret),
        client=client,
        # Every listener only parses, acks and hands the slow half to Taskbot's own executors,
        # so it can run on the request's thread: no hand-off to Bolt's listener pool and no
        # polling for the ack (Bolt checks every 10 ms). Measured in bench/bench_ack.py.
        process_before_response=True,
        listener_executor=ThreadPoolExecutor(max_workers=8, thread_name_prefix="bolt-listener"),
        **kwargs,  # type: ignore[arg-type]
    )
    workers = ThreadPoolExecutor(max_workers=16, thread_name_prefix="taskbot-slack")
    generators = ThreadPoolExecutor(max_workers=8, thread_name_prefix="taskbot-model")
    watcher = RunWatcher(
        runs=services.runs, clients=ClientSource(default=client, installations=installations)
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
    register_listeners(app, flows)
    return SlackRuntime(app, flows, watcher, workers, generators, SlackRequestHandler(app))


def start_socket_mode(runtime: SlackRuntime, app_token: str) -> object:
    """Connect over Socket Mode (no public URL); returns the handler, already connected."""
    from slack_bolt.adapter.socket_mode import SocketModeHandler

    handler = SocketModeHandler(runtime.app, app_token)
    handler.connect()  # type: ignore[no-untyped-call]
    return handler
