"""The whole app behind real HTTP: signed requests in, a mock Slack Web API out, the real
database, worker pool and sandbox, and a fake model."""

from __future__ import annotations

import contextlib
import re
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.composition import Services, build_services
from bot.config import Settings
from bot.roles.web import Server, build_server
from bot.services.replies import RunReplies
from bot.web import BackgroundServer
from storage import migrate
from storage.db import make_engine
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.slack_api import MockSlackAPI
from tests.fakes.slack_requests import SlackSender

SECRET = "s3cret-signing"


@dataclass
class Stack:
    mock: MockSlackAPI
    model: FakeCodeGenerator
    services: Services
    server: Server
    http: BackgroundServer
    slack: SlackSender

    def task_ids(self) -> list[str]:
        return [s.task.id for s in self.services.tasks.list(limit=100)]


def make_stack(tmp_path: Path, **settings_extra: object) -> Stack:
    mock = MockSlackAPI().start()
    values: dict[str, object] = {
        "slack_bot_token": "xoxb-test",
        "slack_signing_secret": SECRET,
        "slack_api_url": mock.api_url,
        "database_url": f"sqlite:///{tmp_path / 'slack.db'}",
        "sandbox_wall_seconds": 5,
        "sandbox_cpu_seconds": 5,
        "worker_concurrency": 2,
        **settings_extra,
    }
    settings = Settings(**values)  # type: ignore[arg-type]
    engine = make_engine(settings.database_url)
    migrate.upgrade(engine)
    model = FakeCodeGenerator()
    services = build_services(settings, engine=engine, generator=model, runner="local")
    server = build_server(settings, services=services)
    http = BackgroundServer(server.web).start()
    sender = SlackSender(f"{http.url}/slack/events", SECRET, response_base=mock.base)
    return Stack(mock, model, services, server, http, sender)


def drain(stack: Stack, *, timeout: float = 20.0) -> None:
    """Wait until the app has nothing left to do with what it was sent so far: every delivery
    handed over, every flow job, run and run-message update finished, no message behind its
    run. A request's hand-off happens before its ack returns, so after ``drain`` nothing more
    will come of the requests already answered."""
    deadline = time.monotonic() + timeout
    slack = stack.server.slack
    flows = slack.flows
    stages = [slack.off_loop, flows.workers, flows.generators, stack.services.pool, flows.watcher]
    replies = RunReplies(stack.services.uow)

    def behind() -> bool:
        return bool(replies.pending(now=datetime.now(UTC)))

    while True:
        for stage in stages:  # in hand-off order: each may hand work to the next
            assert stage.wait_idle(max(0.0, deadline - time.monotonic())), f"{stage} still busy"
        if not behind() and all(stage.wait_idle(0) for stage in stages):
            return
        assert time.monotonic() < deadline, "the app did not go quiet"
        # A message behind its run is the watcher's next pass: wait for the update it makes.
        with contextlib.suppress(AssertionError):
            stack.mock.wait_until(lambda _calls: not behind(), timeout=0.5)


def close_stack(stack: Stack) -> None:
    stack.http.stop()
    stack.server.close()
    stack.mock.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path)
    try:
        yield built
    finally:
        close_stack(built)


def oauth_stack(tmp_path: Path) -> Stack:
    """A multi-workspace stack (SLACK_CLIENT_ID/SECRET, installations in the database)."""
    return make_stack(
        tmp_path, slack_bot_token="", slack_client_id="111.222", slack_client_secret="cs"
    )


def install(stack: Stack, *, team: str, token: str, enterprise: str | None = None) -> None:
    """Install the app into ``team`` through the real OAuth flow (/slack/install, then
    /slack/oauth_redirect with the state cookie), Slack answering oauth.v2.access."""
    stack.mock.tokens[token] = team
    stack.mock.oauth_answer = {
        "ok": True,
        "app_id": "A1",
        "authed_user": {"id": "U9"},
        "scope": "commands,chat:write",
        "token_type": "bot",
        "access_token": token,
        "bot_user_id": "UBOT2",
        "team": {"id": team, "name": "Two"},
        "enterprise": {"id": enterprise, "name": "Org"} if enterprise else None,
        "is_enterprise_install": False,
    }
    with urllib.request.urlopen(f"{stack.http.url}/slack/install") as page:
        html = page.read().decode()
        cookie = page.headers.get("Set-Cookie", "")
    state = re.search(r"state=([\w-]+)", html)
    assert state, html
    request = urllib.request.Request(
        f"{stack.http.url}/slack/oauth_redirect?code=abc&state={state.group(1)}",
        headers={"Cookie": cookie.split(";")[0]},
    )
    with urllib.request.urlopen(request) as done:
        assert done.status == 200
