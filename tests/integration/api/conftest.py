"""The API over real HTTP: uvicorn on loopback, a real database, the fake model, a real sandbox."""

from __future__ import annotations

import http.client
import json as jsonlib
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from bot.composition import Runner, Services, build_services
from bot.config import Settings
from bot.roles.web import api_app
from bot.web import BackgroundServer, WebApp, health_checks
from storage import migrate
from storage.db import make_engine
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import COUNT_LINES, answer_json

TOKEN = "test-token-0123456789"
SEED_ACTION = (
    "given a dataset containing a bunch of text, extract the most important topics from each text"
)
GENERATOR = (
    "def run(input_path):\n    assert input_path is None\n    return 'hello from a generator'\n"
)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    raw: bytes

    @property
    def json(self) -> Any:
        return jsonlib.loads(self.raw)

    def error_code(self) -> str:
        """Asserts the one error shape and returns its code."""
        body = self.json
        assert set(body) == {"error"}, body
        assert set(body["error"]) == {"code", "message"}, body
        assert isinstance(body["error"]["message"], str) and body["error"]["message"]
        return str(body["error"]["code"])


@dataclass
class Api:
    url: str
    services: Services
    model: FakeCodeGenerator
    token: str = TOKEN
    servers: list[BackgroundServer] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        body: bytes | None = None,
        headers: dict[str, str] | None = None,
        token: str | None = "",
    ) -> Reply:
        """``token=""`` sends the right token, ``None`` sends none, anything else is sent."""
        sent = dict(headers or {})
        if token is not None:
            sent.setdefault("Authorization", f"Bearer {token or self.token}")
        if json is not None:
            body = jsonlib.dumps(json).encode()
            sent.setdefault("Content-Type", "application/json")
        parts = urlsplit(self.url)
        conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
        try:
            conn.request(method, path, body=body, headers=sent)
            resp = conn.getresponse()
            raw = resp.read()
            return Reply(resp.status, {k.lower(): v for k, v in resp.getheaders()}, raw)
        finally:
            conn.close()

    def create(
        self,
        code: str = COUNT_LINES,
        *,
        task_type: str = "passthrough",
        desired_action: str = SEED_ACTION,
    ) -> dict[str, Any]:
        self.model.queue(answer_json(code=code))
        reply = self.call(
            "POST",
            "/api/task/create",
            json={"desired_action": desired_action, "task_type": task_type},
        )
        assert reply.status == 201, reply.raw
        return dict(reply.json)

    def refine(self, task_id: str, code: str, feedback: str = "change it") -> Reply:
        self.model.queue(answer_json(code=code, change_summary="changed"))
        return self.call("POST", f"/api/task/{task_id}/refine", json={"feedback": feedback})

    def wait_run(self, run_id: str, timeout: float = 45) -> dict[str, Any]:
        """The run once it ended: the API's own wait (woken by the run's event), asked again
        until ``timeout``."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            reply = self.call("GET", f"/api/run/{run_id}?wait={min(left, 30):.1f}")
            assert reply.status == 200, reply.raw
            if reply.json["final"]:
                return dict(reply.json)
        raise AssertionError(f"run {run_id} did not finish")


def multipart(
    fields: list[tuple[str, str | None, bytes]], boundary: str | None = None
) -> tuple[bytes, str]:
    """(body, content type) for ``(name, filename or None, data)`` parts."""
    boundary = boundary or f"----taskbot{uuid.uuid4().hex}"
    out = bytearray()
    for name, filename, data in fields:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n".encode()
        if filename is not None:
            out += b"Content-Type: application/octet-stream\r\n"
        out += b"\r\n" + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out), f"multipart/form-data; boundary={boundary}"


def api_settings(db_url: str, **extra: Any) -> Settings:
    values: dict[str, Any] = {
        "database_url": db_url,
        "api_token": TOKEN,
        "sandbox_wall_seconds": 5,
        "sandbox_cpu_seconds": 5,
        "sandbox_max_input_mb": 1,
        "worker_concurrency": 2,
        **extra,
    }
    return Settings(**values)


MakeApi = Callable[..., Api]


@pytest.fixture
def make_api() -> Iterator[MakeApi]:
    """``make_api(db_url, runner="none", generator=None, **settings)`` -> a served API."""
    made: list[tuple[Services, BackgroundServer]] = []

    def make(
        db_url: str,
        *,
        runner: Runner = "none",
        generator: Any = None,
        **extra: Any,
    ) -> Api:
        model = generator if generator is not None else FakeCodeGenerator()
        engine = make_engine(db_url)
        migrate.upgrade(engine)
        services = build_services(
            api_settings(db_url, **extra), engine=engine, generator=model, runner=runner
        )
        app = WebApp(
            health=lambda: health_checks(services.engine, services.runs.queue),
            api=api_app(services),
        )
        server = BackgroundServer(app).start()
        made.append((services, server))
        return Api(server.url, services, model)

    yield make
    for services, server in reversed(made):
        server.stop()
        services.close()


@pytest.fixture
def api(make_api: MakeApi, sqlite_url: str) -> Api:
    """The API on SQLite with runs recorded but not executed."""
    return make_api(sqlite_url)


@pytest.fixture
def run_api(make_api: MakeApi, sqlite_url: str) -> Api:
    """The API on SQLite with the in-process pool and a real sandbox."""
    return make_api(sqlite_url, runner="local")
