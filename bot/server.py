"""``python -m bot serve``: Slack, the HTTP API and /healthz in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.composition import Runner, Services, build_services
from bot.config import Settings
from bot.web import WebApp, health_checks

logger = logging.getLogger(__name__)


@dataclass
class Server:
    services: Services
    web: WebApp
    slack: Any  # SlackRuntime (bot.slack is imported lazily: it needs Slack settings)
    socket_mode: Any = None

    def close(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.close()
        if self.slack is not None:
            self.slack.close()
        self.services.close()


def api_app(services: Services) -> Any:
    """The seed's HTTP API, when it is part of this build and API_TOKEN is set."""
    try:
        from bot.api import make_api_app
    except ImportError:
        return None
    return make_api_app(services)


def build_server(
    settings: Settings, *, services: Services | None = None, slack_client: Any = None
) -> Server:
    from bot.slack.app import build_slack, start_socket_mode

    if services is None:
        runner: Runner = "celery" if settings.task_queue == "celery" else "local"
        services = build_services(settings, runner=runner)
        if services.pool is not None:
            services.pool.recover(services.runs)
    slack = build_slack(services, client=slack_client)
    slack.start()
    socket_mode = None
    if settings.slack_app_token:
        socket_mode = start_socket_mode(slack, settings.slack_app_token)
        logger.info("Slack traffic comes over Socket Mode")
    web = WebApp(
        health=lambda: health_checks(services),
        slack=None if settings.slack_app_token else slack.handler,
        api=api_app(services),
    )
    return Server(services, web, slack, socket_mode)


def serve(settings: Settings) -> int:
    from waitress import serve as waitress_serve

    server = build_server(settings)
    logger.info("serving on port %s (Slack at /slack/events, /healthz)", settings.port)
    try:
        waitress_serve(server.web, host="0.0.0.0", port=settings.port, threads=32, ident="taskbot")
    finally:
        server.close()
    return 0
