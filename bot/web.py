"""The one HTTP process as an ASGI app: Slack (/slack/...), the seed's API (/api/...) and
/healthz, served by uvicorn.

Slack's requests reach Bolt's ``AsyncApp`` on the event loop, where listeners only parse, ack
and hand a value on; everything that blocks (the database behind /healthz, the API's service
calls) runs on worker threads.
"""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy import Engine

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, str]]
Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Hook = Callable[[], Awaitable[None]]


def json_body(body: Any) -> bytes:
    # "replace": a lone surrogate in anything a run produced must not make the answer a 500.
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "replace")


async def send_json(send: Send, status: int, body: Any) -> None:
    data = json_body(body)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(data)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


def health_checks(engine: Engine, queue: object | None) -> dict[str, str]:
    """``ok`` or a short reason, for the database and the queue (``ping``ed when it can be)."""
    from sqlalchemy import text  # here: the bare servers of bench/ share this module

    report: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc)
        report["database"] = f"unreachable: {type(exc).__name__}"
    ping = getattr(queue, "ping", None)
    if queue is None:
        report["queue"] = "none"
    elif ping is None:
        report["queue"] = "ok"
    else:
        try:
            ping()
            report["queue"] = "ok"
        except Exception as exc:
            logger.warning("health: queue unreachable: %s", exc)
            report["queue"] = f"unreachable: {type(exc).__name__}"
    return report


class WebApp:
    """Routes by path prefix; everything else is a 404 in the API's error shape. The
    ``on_startup`` and ``on_shutdown`` hooks run in the server's loop (Socket Mode)."""

    def __init__(
        self,
        *,
        health: HealthCheck,
        slack: ASGIApp | None = None,
        api: ASGIApp | None = None,
        on_startup: tuple[Hook, ...] = (),
        on_shutdown: tuple[Hook, ...] = (),
        mcp: ASGIApp | None = None,
    ) -> None:
        self.health = health
        self.slack = slack
        self.api = api
        self.mcp = mcp  # issue 18: /mcp when MCP_ENABLED
        self.on_startup = on_startup
        self.on_shutdown = on_shutdown

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path: str = scope.get("path", "")
        if path.startswith("/slack/") and self.slack is not None:
            await self.slack(scope, receive, send)
        elif (path == "/api" or path.startswith("/api/")) and self.api is not None:
            await self.api(scope, receive, send)
        elif (path == "/mcp" or path.startswith("/mcp/")) and self.mcp is not None:
            await self.mcp(scope, receive, send)
        elif path == "/healthz":
            report = await asyncio.to_thread(self.health)
            # Slack's state is reported, not counted: the API and /healthz stay up without it.
            healthy = all(v in ("ok", "none") for k, v in report.items() if k != "slack")
            await send_json(send, 200 if healthy else 503, {"ok": healthy, **report})
        else:
            await send_json(
                send, 404, {"error": {"code": "not_found", "message": f"No route {path}"}}
            )

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    for hook in self.on_startup:
                        await hook()
                except Exception as exc:
                    logger.exception("start-up failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for hook in self.on_shutdown:
                    try:
                        await hook()
                    except Exception:
                        logger.exception("a shutdown hook failed")
                await send({"type": "lifespan.shutdown.complete"})
                return


def listen(*, host: str, port: int) -> socket.socket:
    """A listening TCP socket (bound before anything else starts, so a port in use is known
    at once, and connections wait in the backlog until the server accepts them)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def uvicorn_server(app: ASGIApp, *, log_level: str = "warning") -> Any:
    import uvicorn

    from bot.slow_clients import GuardedHttpTools

    config = uvicorn.Config(
        app,
        lifespan="on",
        log_config=None,  # the app's own logging; uvicorn's access log stays off
        log_level=log_level,
        access_log=False,
        # httptools with header and body deadlines: slow clients cannot hold connections.
        http=GuardedHttpTools,
        timeout_graceful_shutdown=5,
    )
    return uvicorn.Server(config)


def run_server(server: Any, sock: socket.socket) -> None:
    """Serve on ``sock`` until ``server.should_exit`` (or a signal, on the main thread)."""
    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(server.serve(sockets=[sock]))


class BackgroundServer:
    """uvicorn on a thread of its own (tests and benchmarks); ``url`` at once."""

    def __init__(self, app: ASGIApp, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._sock = listen(host=host, port=port)
        self._server = uvicorn_server(app)
        self._thread = threading.Thread(target=self._run, name="uvicorn", daemon=True)

    def _run(self) -> None:
        run_server(self._server, self._sock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)
        self._sock.close()
