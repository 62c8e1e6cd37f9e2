"""Personal tokens through the real server: issued in Slack, used on the HTTP API and the
terminal, seeing exactly what their owner could in Slack; every request audited."""

from __future__ import annotations

import io
import json
import re
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update

from bot.roles import cli
from storage.kinds import RunStatus
from storage.models import ApiToken
from tests.e2e.slack.conftest import Stack, close_stack, install, make_stack, oauth_stack
from tests.e2e.slack.test_delete import answer
from tests.e2e.slack.test_flows import CSV_ROWS, create
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import text_of

SECRET = re.compile(r"tbp_[A-Za-z0-9_-]{43}")
CSV = "name,country\nal,SE\nbo,NO\n"


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path, admin_users=("UADMIN",))
    try:
        yield built
    finally:
        close_stack(built)


def issue(stack: Stack, *, user: str, name: str, options: str = "", team: str = "T1") -> str:
    """``/task token <name> [options]`` as ``user``; the secret from the ephemeral answer."""
    status, _ = stack.slack.command(
        f"token {name} {options}", user=user, team=team, response_name=name
    )
    assert status == 200
    reply = answer(stack, name)
    assert reply.params.get("response_type") == "ephemeral"
    found = SECRET.search(text_of(reply))
    assert found, text_of(reply)
    return found.group()


def call(
    stack: Stack, method: str, path: str, token: str, body: Any = None
) -> tuple[int, dict[str, Any]]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        stack.http.url + path,
        data=data,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            **({"Content-Type": "application/json"} if data else {}),
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_a_token_acts_as_its_slack_user_and_every_request_is_audited(stack: Stack) -> None:
    task_id, _ = create(stack, CSV_ROWS)  # by U1 in C1
    stack.mock.channel_members["C1"] = ["U1", "U3", "UBOT"]
    mine = issue(stack, user="U1", name="ci")

    status, listed = call(stack, "GET", "/api/tasks", mine)
    assert status == 200 and [t["id"] for t in listed["tasks"]] == [task_id]
    status, accepted = call(
        stack, "POST", f"/api/task/{task_id[:8]}/run", mine, {"input_text": CSV}
    )
    assert status == 202, accepted
    run = stack.services.runs.wait(accepted["run_id"], timeout=60)
    assert run.status is RunStatus.SUCCEEDED
    status, shown = call(stack, "GET", f"/api/run/{run.id}", mine)
    assert status == 200 and shown["result"] == [
        {"name": "al", "country": "SE"},
        {"name": "bo", "country": "NO"},
    ]
    assert shown["requested_by"] == "U1"  # the run is the person's, for budgets and the audit

    # U2 is not in C1: the task and its run do not exist for them, answered as an unknown id.
    other = issue(stack, user="U2", name="u2")
    status, hidden = call(stack, "GET", f"/api/task/{task_id}", other)
    _, unknown = call(stack, "GET", f"/api/task/{'f' * 8}-0000-4000-8000-000000000000", other)
    assert status == 404 and hidden["error"]["code"] == unknown["error"]["code"] == "not_found"
    assert call(stack, "GET", f"/api/run/{run.id}", other)[0] == 404
    assert call(stack, "POST", f"/api/task/{task_id}/run", other, {"input_text": CSV})[0] == 404
    assert call(stack, "GET", "/api/tasks", other)[1]["tasks"] == []

    # U3 is in C1, with a read-only token: sees it, may not run it (403 naming the scope).
    reader = issue(stack, user="U3", name="ro", options="--scopes read")
    assert call(stack, "GET", f"/api/task/{task_id}", reader)[0] == 200
    status, refused = call(stack, "POST", f"/api/task/{task_id}/run", reader, {"input_text": CSV})
    assert status == 403 and "`run` scope" in refused["error"]["message"]

    # Revoked: refused on the very next request.
    stack.slack.command("revoke ci", user="U1", response_name="revoke")
    assert "Revoked token `ci`" in text_of(answer(stack, "revoke"))
    status, gone = call(stack, "GET", "/api/tasks", mine)
    assert status == 401 and "revoked" in gone["error"]["message"]

    # Expired: its day has passed (the row says so), refused at once.
    short = issue(stack, user="U3", name="short", options="--days 1")
    assert call(stack, "GET", "/api/tasks", short)[0] == 200
    with stack.services.uow() as uow:
        uow.session.execute(
            update(ApiToken)
            .where(ApiToken.name == "short")
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        uow.commit()
    status, expired = call(stack, "GET", "/api/tasks", short)
    assert status == 401 and "expired" in expired["error"]["message"]

    # The audit shows each of these, to an admin (API and Slack); not to others.
    admin = issue(stack, user="UADMIN", name="admin")
    status, page = call(stack, "GET", "/api/audit?limit=100", admin)
    assert status == 200
    seen = {(e["user"], e["token_name"], e["action"], e["status"]) for e in page["entries"]}
    assert {
        ("U1", "ci", "GET /api/tasks", 200),
        ("U1", "ci", f"POST /api/task/{task_id[:8]}/run", 202),
        ("U1", "ci", f"GET /api/run/{run.id}", 200),
        ("U2", "u2", f"GET /api/task/{task_id}", 404),
        ("U2", "u2", f"GET /api/run/{run.id}", 404),
        ("U3", "ro", f"POST /api/task/{task_id}/run", 403),
        ("U1", "ci", "GET /api/tasks", 401),
        ("U3", "short", "GET /api/tasks", 401),
    } <= seen
    outcomes = {(e["token_name"], e["status"]): e["outcome"] for e in page["entries"]}
    assert outcomes[("ci", 401)] == "revoked" and outcomes[("short", 401)] == "expired"
    assert outcomes[("ro", 403)] == "not_allowed"
    status, denied = call(stack, "GET", "/api/audit", other)
    assert status == 403 and "ADMIN_USERS" in denied["error"]["message"]

    stack.slack.command("audit", user="UADMIN", response_name="audit")
    shown_in_slack = text_of(answer(stack, "audit"))
    assert f"POST /api/task/{task_id}/run" in shown_in_slack and "not_allowed" in shown_in_slack
    stack.slack.command("audit", user="U1", response_name="no-audit")
    assert "Only Taskbot's admins" in text_of(answer(stack, "no-audit"))


def test_tokens_are_listed_to_their_owner_and_to_admins_and_admins_may_revoke_any(
    stack: Stack,
) -> None:
    token = issue(stack, user="U1", name="laptop", options="--scopes read,run,write --days 7")
    stack.slack.command("tokens", user="U1", response_name="mine")
    mine = text_of(answer(stack, "mine"))
    assert "`laptop`" in mine and "read,run,write" in mine and token not in mine
    stack.slack.command("tokens all", user="U1", response_name="not-admin")
    assert "Only Taskbot's admins" in text_of(answer(stack, "not-admin"))
    stack.slack.command("tokens all", user="UADMIN", response_name="all")
    listed = text_of(answer(stack, "all"))
    assert "<@U1>" in listed and "`laptop`" in listed
    token_id = re.search(r"`laptop` \(`([0-9a-f]{8})`\)", listed)
    assert token_id, listed
    stack.slack.command("revoke laptop", user="U2", response_name="not-yours")
    assert "No live token `laptop` of yours" in text_of(answer(stack, "not-yours"))
    assert call(stack, "GET", "/api/tasks", token)[0] == 200
    stack.slack.command(f"revoke {token_id.group(1)}", user="UADMIN", response_name="by-admin")
    assert "of <@U1>" in text_of(answer(stack, "by-admin"))
    assert call(stack, "GET", "/api/tasks", token)[0] == 401


def test_bad_token_commands_get_a_short_answer(stack: Stack) -> None:
    status, body = stack.slack.command("token ci --days 999")
    assert status == 200 and "`--days` takes a number from 1 to 366." in body
    stack.slack.command("token ci --scopes admin", response_name="scope")
    assert "Unknown scope `admin`" in text_of(answer(stack, "scope"))
    status, body = stack.slack.command("revoke")
    assert "Which token?" in body


def test_the_terminal_acts_with_a_token_against_the_server(
    stack: Stack, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    task_id, _ = create(stack, CSV_ROWS)
    stack.mock.channel_members["C1"] = ["U1"]
    token = issue(stack, user="U1", name="term")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TASKBOT_TOKEN", token)
    out, err = io.StringIO(), io.StringIO()
    assert cli.main(["task", "--server", stack.http.url, "list"], out=out, err=err) == 0, (
        err.getvalue()
    )
    assert task_id in out.getvalue()
    data = tmp_path / "people.csv"
    data.write_text(CSV)
    out = io.StringIO()
    code = cli.main(
        ["task", "--server", stack.http.url, "run", task_id[:8], "--input", str(data)],
        out=out,
        err=err,
    )
    assert code == 0, err.getvalue()
    assert json.loads(out.getvalue()) == [
        {"name": "al", "country": "SE"},
        {"name": "bo", "country": "NO"},
    ]
    monkeypatch.setenv("TASKBOT_TOKEN", "tbp_" + "x" * 43)
    err = io.StringIO()
    assert cli.main(["task", "--server", stack.http.url, "list"], out=out, err=err) == 1
    assert "not valid" in err.getvalue() and "401" in err.getvalue()


def test_budgets_and_write_scope_apply_to_the_token_owner(tmp_path: Path) -> None:
    built = make_stack(tmp_path, budget_user_daily_tokens=30)
    try:
        create(built, CSV_ROWS)  # U1 spends 30 tokens in Slack: their day's budget
        writer = issue(built, user="U1", name="w", options="--scopes read,write")
        body = {"desired_action": "count the words"}
        status, refused = call(built, "POST", "/api/task/create", writer, body)
        assert status == 429 and refused["error"]["code"] == "budget_exceeded"
        reader = issue(built, user="U2", name="r", options="--scopes read")
        status, refused = call(built, "POST", "/api/task/create", reader, body)
        assert status == 403 and "`write` scope" in refused["error"]["message"]
        built.model.queue(answer_json(code=CSV_ROWS))
        other = issue(built, user="U2", name="w2", options="--scopes write,read")
        status, made = call(built, "POST", "/api/task/create", other, body)
        assert status == 201, made
        status, listed = call(built, "GET", "/api/tasks", other)
        assert [t["id"] for t in listed["tasks"]] == [made["id"]]  # theirs; not U1's in C1
        assert built.services.tasks.get(made["id"]).creator == "U2"
        assert built.services.tasks.get(made["id"]).team_id == "T1"
    finally:
        close_stack(built)


def test_with_many_workspaces_members_are_asked_with_that_workspace_s_token(
    tmp_path: Path,
) -> None:
    built = oauth_stack(tmp_path)
    try:
        install(built, team="T2", token="xoxb-two")
        built.model.queue(answer_json(code=CSV_ROWS, name="rows"))
        built.slack.command("create list the rows", team="T2", channel="C7", user="U5")
        assert "ready" in text_of(built.mock.wait_for("chat.update")[-1])
        built.mock.channel_members["C7"] = ["U5", "U6"]
        token = issue(built, user="U6", name="t2", team="T2")
        status, listed = call(built, "GET", "/api/tasks", token)
        assert status == 200 and len(listed["tasks"]) == 1
        asked = built.mock.of("conversations.members")
        assert asked and all(c.token == "xoxb-two" for c in asked)
    finally:
        close_stack(built)
