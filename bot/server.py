"""``python -m bot serve``: Slack, the HTTP API and /healthz in one process."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.composition import Runner, Services, build_services
from bot.config import Settings
from bot.prog import hint
from bot.web import WebApp, health_checks

logger = logging.getLogger(__name__)


@dataclass
class Server:
    services: Services
    web: WebApp
    slack: Any  # SlackRuntime (bot.slack is imported lazily: it needs Slack settings)
    socket_mode: Any = None
    flow_process: Any = None  # FlowProcess, when the slow half runs in a process of its own

    def close(self) -> None:
        if self.socket_mode is not None:
            self.socket_mode.close()
        if self.slack is not None:
            self.slack.close()
        if self.flow_process is not None:
            self.flow_process.close()
        self.services.close()


def api_app(services: Services) -> Any:
    """The seed's HTTP API, when it is part of this build and API_TOKEN is set."""
    try:
        from bot.api import make_api_app
    except ImportError:
        return None
    return make_api_app(services)


def _check_isolation(settings: Settings) -> None:
    from bot.worker.sandbox import SandboxUnavailable, probe_host

    isolation = probe_host()
    if not isolation.secure and not settings.sandbox_insecure:
        raise SandboxUnavailable(
            "This host cannot isolate generated code: "
            + "; ".join(isolation.problems)
            + f". Fix that ({hint('doctor')}), or set SANDBOX_INSECURE=1 to run code anyway."
        )


def build_server(
    settings: Settings,
    *,
    services: Services | None = None,
    slack_client: Any = None,
    flow_process: bool = False,
) -> Server:
    """The web app. With ``flow_process`` the slow half (Slack flows, model calls, run
    messages and, with TASK_QUEUE=local, the worker pool) runs in a process of its own and this
    one only acks, serves the API and /healthz; otherwise everything runs here (tests)."""
    from bot.slack.app import build_slack, start_socket_mode

    flows = None
    if flow_process:
        from bot.slack.flowproc import FlowProcess
        from bot.worker.celery_app import CeleryQueue, make_celery

        if settings.task_queue != "celery":
            _check_isolation(settings)  # before the flow process starts the worker pool
        services = services or build_services(settings)
        flows = FlowProcess(settings)
        flows.start()
        services.runs.queue = (
            CeleryQueue(make_celery(settings)) if settings.task_queue == "celery" else flows
        )
    elif services is None:
        runner: Runner = "celery" if settings.task_queue == "celery" else "local"
        services = build_services(settings, runner=runner)
        if services.pool is not None:
            services.pool.recover(services.runs)
    slack = build_slack(services, client=slack_client, dispatcher=flows)
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
    return Server(services, web, slack, socket_mode, flows)


def serve(settings: Settings) -> int:
    from waitress import serve as waitress_serve

    server = build_server(settings, flow_process=True)
    logger.info("serving on port %s (Slack at /slack/events, /healthz)", settings.port)
    try:
        waitress_serve(server.web, host="0.0.0.0", port=settings.port, threads=32, ident="taskbot")
    finally:
        server.close()
    return 0
