"""The one HTTP process: Slack (/slack/...), the seed's API (/api/...) and /healthz, on waitress.

Bolt's sync App runs under WSGI (its FastAPI adapter would block an event loop); waitress gives
each request a thread, and Slack's slow work never runs on those threads.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import text

if TYPE_CHECKING:
    from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

    from bot.services.container import Services

logger = logging.getLogger(__name__)

HealthCheck = Callable[[], dict[str, str]]


def json_response(
    start_response: StartResponse, status: str, body: Any, headers: Iterable[tuple[str, str]] = ()
) -> list[bytes]:
    # "replace": a lone surrogate in anything a run produced must not make the answer a 500.
    data = json.dumps(body, ensure_ascii=False).encode("utf-8", "replace")
    start_response(
        status,
        [("content-type", "application/json"), ("content-length", str(len(data))), *headers],
    )
    return [data]


def health_checks(services: Services) -> dict[str, str]:
    """``ok`` or a short reason, for the database and the queue."""
    report: dict[str, str] = {}
    try:
        with services.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        report["database"] = "ok"
    except Exception as exc:
        logger.warning("health: database unreachable: %s", exc)
        report["database"] = f"unreachable: {type(exc).__name__}"
    queue = services.runs.queue
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
    """Routes by path prefix; everything else is a 404 in the API's error shape."""

    def __init__(
        self,
        *,
        health: HealthCheck,
        slack: WSGIApplication | None = None,
        api: WSGIApplication | None = None,
    ) -> None:
        self.health = health
        self.slack = slack
        self.api = api

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path == "/healthz":
            report = self.health()
            # Slack's state is reported, not counted: the API and /healthz stay up without it.
            healthy = all(v in ("ok", "none") for k, v in report.items() if k != "slack")
            status = "200 OK" if healthy else "503 Service Unavailable"
            return json_response(start_response, status, {"ok": healthy, **report})
        if path.startswith("/slack/") and self.slack is not None:
            return self.slack(environ, start_response)
        if (path == "/api" or path.startswith("/api/")) and self.api is not None:
            return self.api(environ, start_response)
        return json_response(
            start_response,
            "404 Not Found",
            {"error": {"code": "not_found", "message": f"No route {path}"}},
        )


class BackgroundServer:
    """A waitress server on a thread (tests and benchmarks); ``url`` once started."""

    def __init__(
        self, app: WSGIApplication, *, host: str = "127.0.0.1", port: int = 0, threads: int = 32
    ) -> None:
        from waitress.server import create_server

        self._server: Any = create_server(
            app, host=host, port=port, threads=threads, clear_untrusted_proxy_headers=True
        )
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="waitress", daemon=True)

    def _run(self) -> None:
        server = self._server
        while not self._stopping.is_set():
            server.asyncore.loop(timeout=0.1, map=server._map, count=1)
        server.close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.effective_port}"

    def start(self) -> BackgroundServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
