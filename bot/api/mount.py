"""What ``bot.web.WebApp`` serves under ``/api``, built on the API's first request.

FastAPI, its models and their validators cost the web process about 20 MiB; a deployment that
never calls the API (most serve only Slack) never pays it. While the API is off (no
``API_TOKEN`` and no Slack to issue personal tokens) every path answers 404 and nothing is imported.
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from bot.web import json_body

if TYPE_CHECKING:
    from collections.abc import Callable

    from bot.config import Settings
    from bot.services.container import Services
    from bot.web import ASGIApp, Receive, Scope, Send

OFF = {"error": {"code": "not_found", "message": "The API is off (no API_TOKEN is configured)."}}


class ApiMount:
    def __init__(self, settings: Settings, services: Callable[[], Services]) -> None:
        self._services = services  # built with the app, on the first request
        self._on = api_is_on(settings)
        self._lock = threading.Lock()
        self._built: list[ASGIApp] = []  # the FastAPI app, once built (a cache, not state)

    def _build(self) -> ASGIApp:
        with self._lock:
            if not self._built:
                from bot.api.app import TaskbotApi
                from bot.api.audit import AuditRecorder

                services = self._services()
                app = TaskbotApi(services, max_input_bytes=services.runs.max_input_bytes)
                self._built.append(AuditRecorder(app, services))  # requests with a token audited
            return self._built[0]

    async def app(self) -> ASGIApp:
        """The FastAPI app, built off the event loop the first time."""
        return self._built[0] if self._built else await asyncio.to_thread(self._build)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._on:
            await _send_off(send)
            return
        await (await self.app())(scope, receive, send)


async def _send_off(send: Send) -> None:
    data = json_body(OFF)
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(data)).encode()),
        (b"cache-control", b"no-store"),
        (b"x-content-type-options", b"nosniff"),
    ]
    await send({"type": "http.response.start", "status": 404, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def api_is_on(s: Settings) -> bool:
    """With ``API_TOKEN`` (the operator's door) or Slack (where personal tokens are issued)."""
    return bool(s.api_token or s.slack_bot_token or (s.slack_client_id and s.slack_client_secret))


def make_api_app(services: Services) -> ApiMount:
    """The API as an ASGI application; mount it with ``WebApp(api=...)``."""
    return ApiMount(services.settings, lambda: services)
