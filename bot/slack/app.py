"""The slow half's Slack side: its flows, pools, the run-message watcher and the schedule
ticker. The Bolt app itself is ``bot.slack.async_app``; the clients and the start-up check of
the bot token are ``bot.slack.clients``."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from slack_sdk import WebClient

from bot.services.container import Services
from bot.services.fairness import FairPool
from bot.services.replies import RunReplies
from bot.slack import direct, shortcut
from bot.slack.clients import installations_of, web_client
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


def _client(services: Services, client: WebClient | None) -> WebClient:
    settings = services.settings
    multi = bool(settings.slack_client_id and settings.slack_client_secret)
    return client or web_client(
        token=None if multi else settings.slack_bot_token, base_url=settings.slack_api_url
    )


def build_flows(services: Services, *, client: WebClient | None = None) -> FlowRuntime:
    settings = services.settings
    clients = ClientSource(
        default=_client(services, client),
        installations=installations_of(services.settings, services.engine),
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
    )
    sweep = GenerationSweep(housekeeping=services.housekeeping, clients=clients)
    ticker = ScheduleTicker(flows, clients, every=settings.schedule_check_seconds)
    home = HomeTab(flows, clients)
    extra = {**home.handlers(), **shortcut.handlers(flows), **direct.handlers(flows)}
    handlers = Handlers(flows, extra=extra)
    return FlowRuntime(flows, handlers, watcher, clients, workers, generators, sweep, home, ticker)
