"""The web role, ``python -m bot serve``: acks Slack, serves the HTTP API and /healthz, and
hands the slow half to the flow process (``bot.roles.flow``)."""

from __future__ import annotations

import gc
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

from bot.api.mount import ApiMount, api_is_on
from bot.config import Settings
from bot.edge_limits import EdgeLimits, RequestLimits
from bot.prog import hint
from bot.services.events import RunSignal
from bot.web import WebApp, health_checks, listen, run_server, uvicorn_server
from storage import migrate
from storage.db import make_engine

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from bot.services.container import Services

logger = logging.getLogger(__name__)


class ServicesOnFirstUse:
    """The services, built the first time something asks for them (an API request, a personal
    token to look up, the shortcut's task picker, MCP): Slack's acks and /healthz need only the
    settings and the engine, so an idle web process holds neither the services nor the ORM under
    them (``bench/bench_rss.py``)."""

    def __init__(self, build: Callable[[], Services], *, engine: Engine | None = None) -> None:
        self._build = build
        self._engine = engine  # disposed on close when the services were never built
        self._lock = threading.Lock()
        self._services: Services | None = None  # once built

    def __call__(self) -> Services:
        with self._lock:
            if self._services is None:
                self._services = self._build()
            return self._services

    def close(self) -> None:
        with self._lock:
            if self._services is not None:
                self._services.close()
            elif self._engine is not None:
                self._engine.dispose()


@dataclass
class Server:
    services: ServicesOnFirstUse
    web: WebApp | RequestLimits
    slack: Any  # SlackRuntime (bot.slack is imported lazily: it needs Slack settings)
    socket_mode: Any = None
    flow_process: Any = None  # FlowProcess, when the slow half runs in a process of its own
    slack_state: SlackState | None = None

    def close(self) -> None:
        if self.slack_state is not None:
            self.slack_state.stop()
        if self.slack is not None:
            self.slack.close()
        if self.flow_process is not None:
            self.flow_process.close()
        self.services.close()


def api_app(services: Services) -> Any:
    """The seed's HTTP API (FastAPI, ASGI), mounted natively under /api."""
    from bot.api import make_api_app

    return make_api_app(services)


def _built(settings: Settings, **given: Any) -> Services:
    from bot.composition import build_services

    return build_services(settings, **given)


class SlackState:
    """Whether Slack answered the start-up check; while it has not, it is asked again every
    ``every`` seconds and /healthz says so (``"slack": "unreachable: ..."``)."""

    def __init__(self, settings: Settings, check: Any, *, every: float = 30.0) -> None:
        self._settings = settings
        self.value = "ok" if check.ok else f"unreachable: {check.message}"
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if not check.ok:
            self._thread = threading.Thread(target=self._recheck, name="slack-check", daemon=True)
            self._thread.start()

    def _recheck(self) -> None:
        from bot.slack.clients import check_slack

        while not self._stop.wait(self._every):
            check = check_slack(self._settings)
            if check.ok:
                self.value = "ok"
                logger.warning("Slack is reachable again")
                return
            self.value = ("refused: " if check.fatal else "unreachable: ") + check.message

    def stop(self) -> None:
        self._stop.set()


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
    slack_state: SlackState | None = None,
) -> Server:
    """The web app. With ``flow_process`` the slow half (Slack flows, model calls, run
    messages and, with TASK_QUEUE=local, the pool process below it) runs in a process of its
    own and this one only acks, serves the API and /healthz, its services built on first use;
    otherwise everything runs here (tests)."""
    from bot.slack.async_app import build_slack, start_socket_mode

    flows = None
    engine = services.engine if services is not None else make_engine(settings.database_url)
    if flow_process:
        from bot.roles import flow
        from bot.slack.flowproc import FlowProcess

        if services is None:  # upgraded (SQLite) or found current before anything starts
            migrate.prepare(engine, migrate_command=hint("migrate"))
        if settings.task_queue != "celery":
            _check_isolation(settings)  # before the flow process starts the worker pool
        # What the pool process changes is heard here too, through the flow process (API waits
        # on a run).
        run_signal = services.signal if services is not None else RunSignal()
        flows = FlowProcess(settings, target=flow.main, signal=run_signal)
        flows.start()
        execute = flows.execute
        if services is None and settings.task_queue == "celery":
            # Runs go to Celery, and their changes come back from the workers over Redis (at
            # once: an API wait may listen for them).
            services = _built(
                settings,
                engine=engine,
                check_schema=False,
                runner="celery",
                execute=execute,
                signal=run_signal,
            )
        elif services is None:
            # Checks run where runs run: the web process never starts sandbox processes.
            queue = flows
            lazy = ServicesOnFirstUse(
                lambda: _built(
                    settings,
                    engine=engine,
                    check_schema=False,
                    queue=queue,
                    execute=execute,
                    signal=run_signal,
                ),
                engine=engine,
            )
    elif services is None:
        runner = "celery" if settings.task_queue == "celery" else "local"
        services = _built(settings, engine=engine, runner=runner)
        if services.pool is not None:
            services.pool.recover(services.runs)
    if services is not None:
        ready = services
        lazy = ServicesOnFirstUse(lambda: ready)
        run_queue: object | None = ready.runs.queue
    else:
        run_queue = flows
    slack = build_slack(settings, engine, lazy, client=slack_client, dispatcher=flows)
    slack.start()
    server = Server(lazy, WebApp(health=lambda: {}), slack, None, flows, slack_state)
    app_token = settings.slack_app_token

    async def connect_socket_mode() -> None:
        server.socket_mode = await start_socket_mode(slack, app_token)
        logger.info("Slack traffic comes over Socket Mode")

    async def close_socket_mode() -> None:
        if server.socket_mode is not None:
            await server.socket_mode.close_async()
            server.socket_mode = None

    def health() -> dict[str, str]:
        report = health_checks(engine, run_queue)
        if slack_state is not None:
            report["slack"] = slack_state.value
        return report

    mcp = None
    if settings.mcp_enabled:  # issue 18: the SDK is imported only then
        from bot.roles.mcp import mcp_app

        mcp = mcp_app(lazy())
    app = WebApp(
        health=health,
        slack=None if app_token else slack.handler,  # type: ignore[arg-type]
        api=ApiMount(settings, lazy),
        on_startup=((connect_socket_mode,) if app_token else ()) + ((mcp.startup,) if mcp else ()),
        on_shutdown=((close_socket_mode,) if app_token else ()) + ((mcp.shutdown,) if mcp else ()),
        mcp=mcp,
    )
    # What any request may cost before it is authenticated (bot/edge_limits.py).
    personal = api_is_on(settings) or settings.mcp_enabled  # personal tokens are checked

    def known_token(token: str) -> bool:  # on a thread; the first one builds the services
        return lazy().tokens.known(token)

    limits = EdgeLimits.for_input(
        max_input_bytes=settings.max_input_bytes,
        api_token=settings.api_token,
        known_token=known_token if personal else None,
    )
    server.web = RequestLimits(app, limits=limits)
    return server


class _Terminated(Exception):
    """SIGTERM reached ``serve``: it stops as on Ctrl-C."""


def _terminated(_signum: int, _frame: object) -> NoReturn:
    raise _Terminated


def serve(settings: Settings, *, err: TextIO = sys.stderr) -> int:
    """Serve until Ctrl-C. Slack is checked first: a token Slack refuses, or Slack
    unreachable in Socket Mode (no way for its traffic to arrive), is one line and exit 2 or 1,
    with nothing started; Slack unreachable over HTTP is one warning line, then the HTTP API,
    /healthz (``"slack": "unreachable: ..."``) and /slack/events are served while it is
    checked again every 30 s."""
    from bot.slack.clients import check_slack

    check = check_slack(settings)
    if check.fatal:
        err.write(f"error: {check.message}\n")
        return 2
    if not check.ok and settings.slack_app_token:
        err.write(f"error: {check.message}; Socket Mode cannot connect without it.\n")
        return 1
    if not check.ok:
        err.write(
            f"warning: {check.message}; serving the HTTP API and /healthz, and Slack as soon "
            "as it answers.\n"
        )
    try:
        sock = listen(host="0.0.0.0", port=settings.port)
    except OSError as exc:
        err.write(f"error: cannot listen on port {settings.port} (PORT): {exc.strerror}\n")
        return 1
    server = build_server(settings, flow_process=True, slack_state=SlackState(settings, check))
    web = uvicorn_server(server.web)
    # What start-up built lives as long as the process: out of the collector's way. Else a
    # full collection walks it (about 100k objects, 0.35 s under load in bench/bench_ack.py)
    # while every request in flight waits, which alone set the acks' p99; frozen, 1 ms.
    gc.collect()
    gc.freeze()
    logger.info("serving on port %s (Slack at /slack/events, /healthz)", settings.port)
    # uvicorn stops serving on SIGTERM, then raises it again for the handler it found: the
    # default one would end this process there, before the flow process is told to finish
    # and the rest is closed below (the flow process, its sandbox, its queues' semaphores).
    previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        run_server(web, sock)
    except (KeyboardInterrupt, _Terminated):
        pass  # uvicorn stopped on Ctrl-C or SIGTERM and raised it again: the quiet way out
    finally:
        signal.signal(signal.SIGTERM, previous)  # a second SIGTERM while closing ends it
        sock.close()
        server.close()
    if not web.started and settings.slack_app_token:
        err.write("error: Socket Mode could not connect to Slack.\n")
        return 1
    return 0
