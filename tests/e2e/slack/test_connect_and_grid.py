"""Slack Connect, Enterprise Grid, uninstalls, file stubs and redirects, and the smaller
details, each as the real Slack sends it (envelopes from Slack's docs and Bolt's test data)."""

from __future__ import annotations

import time
from pathlib import Path

from slack_sdk.oauth.installation_store.sqlalchemy import SQLAlchemyInstallationStore

from bot.services.runs import ReplyTarget
from tests.e2e.slack.conftest import (
    Stack,
    close_stack,
    drain,
    install,
    make_stack,
    oauth_stack,
)
from tests.e2e.slack.test_flows import COUNT_CHARS, CSV_ROWS, PEOPLE, create
from tests.e2e.slack.test_slack_errors import wait_shown, wait_until
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import text_of


def file_event(root_ts: str, file: dict[str, object], *, user: str = "U1") -> dict[str, object]:
    return {
        "type": "message",
        "subtype": "file_share",
        "channel": "C1",
        "channel_type": "channel",
        "user": user,
        "text": "",
        "ts": f"{time.time():.6f}",
        "thread_ts": root_ts,
        "files": [file],
    }


def test_an_external_member_of_a_shared_channel_refines_and_runs(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    stack.model.queue(answer_json(code=CSV_ROWS, change_summary="Sorted."))
    reply = {
        "type": "message",
        "channel": "C1",
        "channel_type": "channel",
        "user": "UEXT1",
        "user_team": "TEXT",
        "source_team": "TEXT",
        "text": "sort the rows",
        "ts": f"{time.time():.6f}",
        "thread_ts": root_ts,
    }
    # The envelope's team_id is the other organisation's; authorizations[0] is ours.
    status, _ = stack.slack.event(reply, team="TEXT", installed_team="T1", shared=True)
    assert status == 200
    wait_until(lambda: stack.services.tasks.get(task_id).current_version == 2, what="v2")
    assert "sort the rows" in stack.model.prompts[-1][1].content
    upload = file_event(root_ts, stack.mock.host_file("ext.csv", PEOPLE), user="UEXT1")
    stack.slack.event(upload, team="TEXT", installed_team="T1", shared=True)
    wait_shown(stack, "ext.csv")


def test_the_file_modal_submitted_from_a_shared_channel_runs(stack: Stack) -> None:
    task_id, _ = create(stack, COUNT_CHARS, name="count_chars")
    stack.slack.command(f"run {task_id[:8]}")
    meta = stack.mock.wait_for("views.open")[0].params["view"]["private_metadata"]
    file = stack.mock.host_file("shared.txt", b"hello", "text/plain")
    # Submitted by an external member: team is theirs, view.app_installed_team_id ours.
    status, _ = stack.slack.submit_files(meta, [file], team="TEXT", installed_team="T1")
    assert status == 200
    wait_shown(stack, "shared.txt")
    drain(stack)  # the submission handled to its end
    assert stack.mock.of("chat.postEphemeral") == []


def test_enterprise_grid_button_and_modal_use_the_orgs_installation(tmp_path: Path) -> None:
    stack = oauth_stack(tmp_path)
    try:
        install(stack, team="T2", token="xoxb-grid", enterprise="E1")
        stack.model.queue(answer_json(code=COUNT_CHARS, name="count_chars"))
        stack.slack.command("create count chars", team="T2", channel="CG", enterprise="E1")
        stack.mock.wait_for("chat.update", 1, channel="CG")
        task_id = stack.task_ids()[0]
        # block_actions carries the enterprise only as team.enterprise_id.
        stack.slack.button(task_id, team="T2", channel="CG", enterprise="E1")
        opened = stack.mock.wait_for("views.open")[0]
        assert opened.token == "xoxb-grid"
        file = stack.mock.host_file("grid.txt", b"abc", "text/plain")
        meta = opened.params["view"]["private_metadata"]
        stack.slack.submit_files(meta, [file], team="T2", enterprise="E1")
        shown = wait_shown(stack, "grid.txt")
        assert shown.token == "xoxb-grid"
    finally:
        close_stack(stack)


def uninstall_events(stack: Stack, team: str) -> list[int]:
    revoked = {"type": "tokens_revoked", "tokens": {"oauth": [], "bot": ["UBOT2"]}}
    return [
        stack.slack.event(revoked, team=team)[0],
        stack.slack.event({"type": "app_uninstalled"}, team=team)[0],
    ]


def pending_run_for(stack: Stack, task_id: str, team: str, channel: str) -> str:
    """A run whose message is behind, in ``team``: the watcher will try to update it."""
    runs = stack.services.runs
    run = runs.request(
        task_id, requested_by="U1", input_data=b"a\n", input_name="late.txt", team_id=team,
        submit=False, reply=ReplyTarget(team, None, channel, "1650000000.000001"),
    )  # fmt: skip
    runs.attach_reply(run.id, message_ts="1650000000.000002", shown_status="queued")
    runs.submit(run.id)
    return run.id


def reply_error(stack: Stack, run_id: str) -> str | None:
    with stack.services.uow() as uow:
        run = uow.runs.get(run_id)
        assert run is not None
        return run.reply_error


def test_uninstalling_deletes_the_installation_stops_its_work_and_keeps_its_data(
    tmp_path: Path,
) -> None:
    stack = oauth_stack(tmp_path)
    try:
        install(stack, team="T2", token="xoxb-two")
        stack.model.queue(answer_json(code=COUNT_CHARS))
        stack.slack.command("create count chars", team="T2", channel="C2")
        stack.mock.wait_for("chat.update", 1, channel="C2")
        task_id = stack.task_ids()[0]
        stack.mock.revoke("xoxb-two")
        assert uninstall_events(stack, "T2") == [200, 200]
        store = SQLAlchemyInstallationStore(client_id="111.222", engine=stack.services.engine)
        # Deleted by the listener, which Bolt runs after the event's ack: waited for.
        wait_until(
            lambda: store.find_bot(enterprise_id=None, team_id="T2") is None,
            what="the installation deleted",
        )
        run_id = pending_run_for(stack, task_id, "T2", "C2")
        wait_until(lambda: reply_error(stack, run_id) is not None, what="the update to end")
        assert [c for c in stack.mock.of("chat.update") if c.token == "xoxb-two" and not c.ok] == []
        assert stack.services.tasks.get(task_id).current_version == 1  # its data is kept
    finally:
        close_stack(stack)


def test_uninstalling_a_single_workspace_app_stops_its_updates(tmp_path: Path) -> None:
    stack = make_stack(tmp_path)
    try:
        task_id, _ = create(stack, COUNT_CHARS, name="count_chars")
        stack.mock.revoke("xoxb-test")
        assert uninstall_events(stack, "T1") == [200, 200]
        run_id = pending_run_for(stack, task_id, "T1", "C1")
        wait_until(lambda: reply_error(stack, run_id) is not None, what="the update to end")
        assert [c for c in stack.mock.of("chat.update") if not c.ok] == []
    finally:
        close_stack(stack)


def test_file_stubs_get_their_true_reason(stack: Stack) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    hidden = stack.mock.host_file("old.csv", PEOPLE, mode="hidden_by_limit")
    stack.slack.event(file_event(root_ts, hidden))
    said = text_of(stack.mock.wait_for("chat.postEphemeral", 1)[-1])
    assert "plan" in said and "hidden" in said, said
    gone = stack.mock.host_file("gone.csv", PEOPLE, mode="tombstone")
    stack.slack.event(file_event(root_ts, gone))
    said = text_of(stack.mock.wait_for("chat.postEphemeral", 2)[-1])
    assert "deleted" in said and "files:read" not in said, said
    described = stack.mock.host_file("later.csv", PEOPLE, mode="check_file_info")
    stack.slack.event(file_event(root_ts, described))
    wait_shown(stack, "later.csv")


def test_file_redirects_are_checked_at_every_hop(stack: Stack) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    inner = stack.mock.host_file("inner.csv", PEOPLE)
    hop = stack.mock.host_file("hop.csv", PEOPLE)
    stack.mock.redirect_file(hop, str(inner["url_private_download"]))  # Slack to Slack: fine
    stack.slack.event(file_event(root_ts, hop))
    wait_shown(stack, "hop.csv")
    away = stack.mock.host_file("away.csv", PEOPLE)
    elsewhere = str(inner["url_private_download"]).replace("127.0.0.1", "localhost")
    stack.mock.redirect_file(away, elsewhere)
    stack.slack.event(file_event(root_ts, away))
    said = text_of(stack.mock.wait_for("chat.postEphemeral", 1)[-1])
    assert "away.csv" in said and "not hosted by Slack" in said, said
    assert [c for c in stack.mock.of("file") if c.host.startswith("localhost")] == []


def test_the_root_messages_fallback_text_is_escaped(stack: Stack) -> None:
    stack.model.queue(answer_json(code=CSV_ROWS))
    stack.slack.command("create ping <!channel> and <@U999> about <https://evil.example|x>")
    root = stack.mock.wait_for("chat.postMessage", 1)[0]
    text = str(root.params["text"])
    assert "<!channel>" not in text and "<@U999>" not in text and "<https:" not in text
    assert "&lt;!channel&gt;" in text


def test_a_direct_message_gets_an_answer_that_can_work(stack: Stack) -> None:
    stack.mock.fail("chat.postMessage", "channel_not_found", channel="D0DM")
    stack.slack.command(
        "create x", channel="D0DM", channel_name="directmessage", response_name="dm"
    )
    said = text_of(stack.mock.wait_for("response_url")[0])
    assert "/invite" not in said and "channel" in said, said
    assert stack.model.prompts == []


def test_a_group_dm_thread_is_heard(stack: Stack) -> None:
    stack.model.queue(answer_json(code=CSV_ROWS))
    stack.slack.command("create rows", channel="GMPIM")
    root = stack.mock.wait_for("chat.update", 1, channel="GMPIM")[0]
    upload = {**file_event(str(root.params["ts"]), stack.mock.host_file("g.csv", PEOPLE))}
    upload.update(channel="GMPIM", channel_type="mpim")
    stack.slack.event(upload)
    wait_shown(stack, "g.csv")
