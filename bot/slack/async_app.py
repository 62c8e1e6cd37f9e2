"""The web edge's Bolt app: ``AsyncApp`` behind Bolt's ASGI handler, or over Socket Mode.

Listeners only parse, ack and hand one value to the dispatcher (the flow process's pipe, or,
in tests, the in-process slow half on a thread); nothing on the ack path blocks the loop.
OAuth runs through Bolt's async flow, over the app's database on worker threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.adapter.asgi.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.oauth.async_oauth_settings import AsyncOAuthSettings
from slack_sdk import WebClient
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Settings
from bot.slack.async_stores import ThreadedInstallationStore, ThreadedStateStore
from bot.slack.clients import BOT_SCOPES, installations_of
from bot.slack.listeners import register_listeners
from bot.slack.messages import Dispatcher, Message
from bot.slack.tracked import TrackedPool

if TYPE_CHECKING:
    from collections.abc import Callable

    from sqlalchemy import Engine

    from bot.services.container import Services
    from bot.slack.app import FlowRuntime

logger = logging.getLogger(__name__)


class OffLoop:
    """A dispatcher that hands each job to a thread: the in-process slow half looks up the
    workspace's installation (database) before it starts, which must not run on the loop."""

    def __init__(self, target: Dispatcher) -> None:
        self._target = target
        self._pool = TrackedPool(max_workers=4, thread_name_prefix="taskbot-dispatch")

    def dispatch(self, job: Message) -> None:
        self._pool.submit(self._run, job)

    def _run(self, job: Message) -> None:
        try:
            self._target.dispatch(job)
        except Exception:
            logger.exception("could not hand over a %s", type(job).__name__)

    def wait_idle(self, timeout: float) -> bool:
        return self._pool.wait_idle(timeout)

    def close(self) -> None:
        self._pool.shutdown(wait=True)


@dataclass
class SlackRuntime:
    app: AsyncApp
    handler: AsyncSlackRequestHandler
    flows: FlowRuntime | None  # None when the flow process does the slow half
    off_loop: OffLoop | None = None

    def start(self) -> None:
        if self.flows is not None:
            self.flows.start()

    def close(self) -> None:
        if self.off_loop is not None:
            self.off_loop.close()
        if self.flows is not None:
            self.flows.close()


def async_client(*, token: str | None, base_url: str) -> AsyncWebClient:
    return AsyncWebClient(
        token=token or None, base_url=base_url if base_url.endswith("/") else base_url + "/"
    )


class _SameToken(logging.Filter):
    """Bolt also reads SLACK_BOT_TOKEN from the environment and warns that the client's token
    wins; the client's token is that setting, so the warning is noise on every start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


def _bolt_logger() -> logging.Logger:
    bolt = logging.getLogger("slack_bolt.AsyncApp")
    if not any(isinstance(f, _SameToken) for f in bolt.filters):
        bolt.addFilter(_SameToken())
    return bolt


def build_slack(
    settings: Settings,
    engine: Engine,
    services: Callable[[], Services],
    *,
    client: WebClient | None = None,
    dispatcher: Dispatcher | None = None,
) -> SlackRuntime:
    """The Bolt app, over the app's database (``engine``: installations, OAuth state) and the
    ``services``, built when a listener first needs them. Without a ``dispatcher`` the slow half
    runs in this process (on Taskbot's own pools, with ``client`` for the Web API)."""
    installations = installations_of(settings, engine)
    kwargs: dict[str, Any] = {}
    if installations is not None:
        from slack_sdk.oauth.state_store.sqlalchemy import SQLAlchemyOAuthStateStore

        store = ThreadedInstallationStore(installations)
        kwargs["installation_store"] = store
        kwargs["oauth_settings"] = AsyncOAuthSettings(
            client_id=settings.slack_client_id,
            client_secret=settings.slack_client_secret,
            scopes=list(BOT_SCOPES),
            installation_store=store,
            state_store=ThreadedStateStore(
                SQLAlchemyOAuthStateStore(expiration_seconds=600, engine=engine)
            ),
            install_path="/slack/install",
            redirect_uri_path="/slack/oauth_redirect",
        )
    app = AsyncApp(
        logger=_bolt_logger(),
        signing_secret=settings.slack_signing_secret or None,
        request_verification_enabled=bool(settings.slack_signing_secret),
        client=async_client(
            token=None if installations else settings.slack_bot_token,
            base_url=settings.slack_api_url,
        ),
        **kwargs,
    )
    flows = None
    off_loop = None
    if dispatcher is None:
        from bot.slack.app import build_flows  # the slow half here (tests), not in serve

        flows = build_flows(services(), client=client)
        off_loop = OffLoop(flows)
        dispatcher = off_loop
    register_listeners(app, dispatcher, revocations=installations is not None, services=services)
    return SlackRuntime(app, AsyncSlackRequestHandler(app), flows, off_loop)


async def start_socket_mode(runtime: SlackRuntime, app_token: str) -> Any:
    """Connect over Socket Mode (no public URL); returns the handler, already connected."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    handler = AsyncSocketModeHandler(runtime.app, app_token)
    await handler.connect_async()  # type: ignore[no-untyped-call]
    return handler
