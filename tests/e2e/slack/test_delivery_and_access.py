"""Signatures, retries, ignored events, access rules, OAuth install, Socket Mode, rate limits."""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from freezegun import freeze_time
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.request import SocketModeRequest

from storage.kinds import RunStatus
from tests.e2e.slack.conftest import SECRET, Stack, close_stack, drain, make_stack
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create, wait_run
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import text_of


def test_forged_and_stale_requests_are_rejected(stack: Stack) -> None:
    status, _ = stack.slack.command("list", signature="v0=" + "0" * 64)
    assert status == 401
    status, _ = stack.slack.command("list", timestamp=int(time.time()) - 6 * 60)
    assert status == 401
    drain(stack)  # anything handed over would be done now
    assert stack.mock.of("response_url") == []


def test_a_signature_from_five_minutes_ago_is_stale(stack: Stack) -> None:
    body = "command=%2Ftask&text=help&team_id=T1&channel_id=C1&user_id=U1&trigger_id=t.f1"
    now = datetime.now()
    ts = str(int(now.timestamp()))
    headers = {
        "content-type": ["application/x-www-form-urlencoded"],
        "x-slack-request-timestamp": [ts],
        "x-slack-signature": [
            SignatureVerifier(SECRET).generate_signature(timestamp=ts, body=body)
        ],
    }
    app = stack.server.slack.app

    def status() -> int:
        request = AsyncBoltRequest(body=body, headers=headers)
        return asyncio.run(app.async_dispatch(request)).status

    assert status() == 200
    with freeze_time(now + timedelta(minutes=5, seconds=30)):
        assert status() == 401


def test_retried_deliveries_never_duplicate(stack: Stack) -> None:
    stack.model.queue(answer_json(code=CSV_ROWS))
    for _ in range(3):
        status, _ = stack.slack.command("create list rows", trigger_id="trigger.same")
        assert status == 200
    stack.mock.wait_for("chat.update")
    drain(stack)  # all three deliveries handled
    assert len(stack.task_ids()) == 1
    task_id = stack.task_ids()[0]
    root_ts = stack.services.tasks.get(task_id).thread_ts
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": "C1",
        "user": "U1",
        "text": "",
        "ts": "1800000000.000001",
        "thread_ts": root_ts,
        "files": [stack.mock.host_file("p.csv", PEOPLE)],
    }
    assert stack.slack.event(event, event_id="EvSAME")[0] == 200
    assert stack.slack.event(event, event_id="EvSAME", retry_num=1)[0] == 200
    assert stack.slack.event(event, event_id="EvSAME", retry_num=2)[0] == 200
    wait_run(stack, "succeeded")
    stack.model.queue(answer_json(code=CSV_ROWS, change_summary="v2"))
    reply = {
        "type": "message",
        "channel": "C1",
        "user": "U1",
        "text": "sort it",
        "ts": "1800000000.000002",
        "thread_ts": root_ts,
    }
    stack.slack.event(reply, event_id="EvREPLY")
    stack.slack.event(reply, event_id="EvREPLY", retry_num=1)
    drain(stack)  # both deliveries of the reply handled, and the upload's three
    assert stack.services.tasks.get(task_id).current_version == 2
    with stack.services.uow() as uow:
        assert len(uow.runs.with_status(RunStatus.SUCCEEDED)) == 1
    assert [v.number for v in stack.services.tasks.versions(task_id)] == [1, 2]
    assert len(stack.model.prompts) == 2


def test_bots_our_own_messages_and_edits_are_ignored(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    calls = len(stack.mock.calls)
    base = {"type": "message", "channel": "C1", "text": "change it", "thread_ts": root_ts}
    stack.slack.event({**base, "user": "UBOT", "ts": "1.1"})
    stack.slack.event({**base, "bot_id": "B2", "user": "U7", "ts": "1.2"})
    stack.slack.event({**base, "subtype": "bot_message", "bot_id": "B3", "ts": "1.3"})
    stack.slack.event(
        {
            "type": "message",
            "subtype": "message_changed",
            "channel": "C1",
            "ts": "1.4",
            "message": {"user": "U1", "text": "edited", "thread_ts": root_ts},
        }
    )
    stack.slack.event(
        {
            "type": "message",
            "subtype": "message_deleted",
            "channel": "C1",
            "ts": "1.5",
            "previous_message": {"user": "U1", "thread_ts": root_ts},
        }
    )
    stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "not a task",
            "ts": "1.6",
            "thread_ts": "999.999",
        }
    )
    drain(stack)  # every event handed over and handled
    assert len(stack.mock.calls) == calls
    assert len(stack.model.prompts) == 1


def test_tasks_stay_in_their_workspace_and_channel(stack: Stack) -> None:
    task_id, _ = create(stack, CSV_ROWS)
    stack.slack.command(f"show {task_id[:8]}", channel="C2", user="U2", response_name="other")
    refused = stack.mock.wait_for("response_url")[-1]
    assert "belongs to <#C1>" in text_of(refused) and "csv" not in text_of(refused)
    stack.slack.command(f"run {task_id[:8]} hi", channel="C2", user="U2", response_name="other-run")
    assert "belongs to <#C1>" in text_of(stack.mock.wait_for("response_url", 2)[-1])
    stack.slack.command(f"show {task_id[:8]}", channel="C2", user="U1", response_name="creator")
    assert "csv.DictReader" in text_of(
        stack.mock.wait_for("response_url", 3)[-1]
    )  # its creator may
    stack.mock.tokens["xoxb-test"] = "T1"
    stack.slack.command(f"show {task_id[:8]}", team="T9", response_name="team9")
    drain(stack)
    answers = [text_of(c) for c in stack.mock.of("response_url")]
    assert not any("csv.DictReader" in a for a in answers[3:])
    with stack.services.uow() as uow:
        assert uow.runs.latest_for_task(task_id) is None


def test_allowed_channels_and_users(tmp_path: Path) -> None:
    stack = make_stack(tmp_path, allowed_channels=("C1",), allowed_users=("U1",))
    try:
        stack.slack.command("create x", channel="C5", response_name="c5")
        assert "not enabled in this channel" in text_of(stack.mock.wait_for("response_url")[0])
        stack.slack.command("create x", user="U5", response_name="u5")
        assert "not on this Taskbot's list" in text_of(stack.mock.wait_for("response_url", 2)[-1])
        assert stack.task_ids() == []
    finally:
        close_stack(stack)


def test_rate_limited_updates_are_delivered_after_retry_after(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    stack.mock.rate_limit("chat.update", 1.5)
    stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U1",
            "text": "",
            "ts": "1800000000.000004",
            "thread_ts": root_ts,
            "files": [stack.mock.host_file("p.csv", PEOPLE)],
        }
    )
    assert "ada" in wait_run(stack, "succeeded")


class RecordingSocketClient:
    """Stands in for the websocket: records what the handler sends back."""

    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.logger = logging.getLogger("socket-mode-test")

    async def send_socket_mode_response(self, response: Any) -> None:
        self.sent.append(response)


def test_a_socket_mode_dispatch(stack: Stack) -> None:
    """Bolt's async Socket Mode handler over the same AsyncApp the HTTP edge serves."""
    from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

    client = RecordingSocketClient()
    stack.model.queue(answer_json(code=CSV_ROWS))
    payload = {
        "command": "/task",
        "text": "create rows over a socket",
        "team_id": "T1",
        "channel_id": "C1",
        "user_id": "U1",
        "trigger_id": "trigger.socket",
        "response_url": stack.mock.response_url("s"),
    }

    async def deliver(envelope_id: str, body: dict[str, Any]) -> None:
        handler = AsyncSocketModeHandler(stack.server.slack.app, app_token="xapp-test")
        request = SocketModeRequest(type="slash_commands", envelope_id=envelope_id, payload=body)
        await handler.handle(client, request)  # type: ignore[arg-type]
        await handler.client.close()

    asyncio.run(deliver("env-1", payload))
    assert client.sent and client.sent[0].envelope_id == "env-1"
    assert "ready" in text_of(stack.mock.wait_for("chat.update")[-1])
    client.sent.clear()
    asyncio.run(deliver("env-2", {**payload, "text": "help", "trigger_id": "t.s2"}))
    assert "/task create" in json.dumps(client.sent[0].payload)


def test_oauth_install_then_the_workspace_uses_its_own_token(tmp_path: Path) -> None:
    stack = make_stack(
        tmp_path, slack_bot_token="", slack_client_id="111.222", slack_client_secret="cs"
    )
    try:
        stack.mock.tokens["xoxb-team2"] = "T2"
        stack.mock.oauth_answer = {
            "ok": True,
            "app_id": "A1",
            "authed_user": {"id": "U9"},
            "scope": "commands,chat:write",
            "token_type": "bot",
            "access_token": "xoxb-team2",
            "bot_user_id": "UBOT2",
            "team": {"id": "T2", "name": "Two"},
            "enterprise": None,
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
        assert stack.mock.of("oauth.v2.access")
        stack.model.queue(answer_json(code=CSV_ROWS))
        stack.slack.command("create list rows", team="T2", channel="C22")
        stack.mock.wait_for("chat.update")
        posts = [c for c in stack.mock.calls if c.method.startswith("chat.")]
        assert posts and all(c.token == "xoxb-team2" for c in posts)
    finally:
        close_stack(stack)
