"""Slack errors that will not go away, rate limits and upload limits, as the real Slack answers
them: a run's message must cost a few calls at most, and never hold up another run's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from bot.services.runs import ReplyTarget
from tests.e2e.slack.conftest import Stack, close_stack, install, make_stack, oauth_stack
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of

TWENTY_FILES = (
    "import os\n\ndef run(input_path):\n"
    "    os.makedirs('output', exist_ok=True)\n"
    "    for i in range(20):\n"
    "        with open(f'output/part{i:02d}.txt', 'w') as f:\n"
    "            f.write(str(i))\n"
    "    return 'x' * 4000\n"
)


def upload(stack: Stack, root_ts: str, name: str, *, team: str = "T1", channel: str = "C1") -> int:
    status, _ = stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": channel,
            "user": "U1",
            "text": "",
            "ts": f"{time.time():.6f}",
            "thread_ts": root_ts,
            "files": [stack.mock.host_file(name, PEOPLE)],
        },
        team=team,
    )
    return status


def wait_until(condition: Any, *, timeout: float = 30.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def wait_shown(stack: Stack, name: str, status: str = "succeeded") -> Call:
    """Wait until Slack accepted an update showing the run on ``name`` at ``status``."""

    def shown() -> list[Call]:
        return [
            c
            for c in stack.mock.of("chat.update")
            if c.ok and f"on {name}: {status}" in str(c.params.get("text"))
        ]

    wait_until(lambda: bool(shown()), what=f"the run on {name} shown {status}")
    return shown()[0]


def run_post(stack: Stack, name: str) -> Call:
    """The run message Taskbot posted for the input ``name`` (waits for it)."""

    def posts() -> list[Call]:
        return [c for c in stack.mock.of("chat.postMessage") if name in text_of(c)]

    wait_until(lambda: bool(posts()), what=f"the run message for {name}")
    return posts()[0]


def updates_of(stack: Stack, ts: str | None) -> list[Call]:
    return [c for c in stack.mock.of("chat.update") if c.params.get("ts") == ts]


def final_in_db(stack: Stack, name: str) -> bool:
    with stack.services.uow() as uow:
        task_id = stack.task_ids()[0]
        run = uow.runs.latest_for_task(task_id)
        return run is not None and run.input_name == name and run.status == "succeeded"


@pytest.mark.parametrize("cause", ["message deleted", "channel archived"])
def test_a_run_message_that_cannot_be_updated_costs_a_few_calls(
    stack: Stack, cause: str, caplog: pytest.LogCaptureFixture
) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    if cause == "message deleted":
        stack.mock.delete_posts("doomed.csv")
    else:  # archived right after the run was posted: every update there answers is_archived
        stack.mock.fail("chat.update", "is_archived", times=None, channel="C1")
    assert upload(stack, root_ts, "doomed.csv") == 200
    doomed = run_post(stack, "doomed.csv")
    wait_until(lambda: final_in_db(stack, "doomed.csv"), what="the run to end")
    # Other work goes on: a task in another channel is made and run, its message kept current.
    stack.model.queue(answer_json(code=CSV_ROWS, name="other"))
    stack.slack.command("create rows elsewhere", channel="C2")
    ready = stack.mock.wait_for("chat.update", 1, channel="C2")[0]
    upload(stack, str(ready.params["ts"]), "fine.csv", channel="C2")
    wait_shown(stack, "fine.csv")
    failed = [c for c in updates_of(stack, doomed.answer_ts) if not c.ok]
    assert len(failed) == 1, [c.error for c in failed]  # recorded: never tried again
    logged = [r for r in caplog.records if r.name == "bot.slack.notifier"]
    assert len(logged) == 1 and not logged[0].exc_info  # once, and no traceback


def test_slacks_own_trouble_is_waited_out(stack: Stack) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    stack.mock.fail("chat.update", "internal_error", times=2, channel="C1")
    stack.mock.fail("chat.update", "service_unavailable", times=1, channel="C1")
    upload(stack, root_ts, "flaky.csv")
    shown = wait_shown(stack, "flaky.csv")
    failed = [c for c in updates_of(stack, shown.params["ts"]) if not c.ok]
    assert [c.error for c in failed] == ["internal_error", "internal_error", "service_unavailable"]
    assert failed[1].at - failed[0].at >= 0.9  # backed off (1 s, then 2 s), not hammered
    assert failed[2].at - failed[1].at >= 1.9


def test_a_hundred_dead_run_messages_do_not_delay_a_new_run(tmp_path: Path) -> None:
    # One user's 55 runs queued at once: the fair shares (10 waiting per user) would answer
    # most "Busy" whenever the pool falls behind; what is tested here is the watcher.
    stack = make_stack(tmp_path, fair_user_queued_runs=0, fair_channel_queued_runs=0)
    try:
        _dead_messages_then_a_new_run(stack)
    finally:
        close_stack(stack)


def _dead_messages_then_a_new_run(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    runs = stack.services.runs
    target = ReplyTarget("T1", None, "C1", root_ts)
    for i in range(55):  # more than the watcher looks at in one pass
        run = runs.request(
            task_id, requested_by="U1", input_data=PEOPLE, input_name=f"old{i}.csv",
            team_id="T1", submit=False, reply=target,
        )  # fmt: skip
        runs.attach_reply(run.id, message_ts=f"1600000000.{i:06d}", shown_status="queued")
        runs.submit(run.id)
    upload(stack, root_ts, "new.csv")
    wait_shown(stack, "new.csv")


def test_twenty_output_files_reach_the_thread_within_slacks_limit(stack: Stack) -> None:
    _, root_ts = create(stack, TWENTY_FILES, name="twenty")
    stack.mock.fail("files.completeUploadExternal", "internal_error", times=1)
    upload(stack, root_ts, "in.csv")
    wait_shown(stack, "in.csv")

    def delivered() -> list[Call]:
        return [c for c in stack.mock.of("files.completeUploadExternal") if c.ok]

    wait_until(lambda: len(delivered()) >= 3, what="three delivered uploads")
    calls = stack.mock.of("files.completeUploadExternal")
    assert len(calls) == 4 and not calls[0].ok  # Slack's internal_error, tried again
    assert all(len(c.params["files"]) <= 10 for c in calls)
    titles = [f["title"] for c in delivered() for f in c.params["files"]]
    assert len(titles) == 21 and sum(t.startswith("part") for t in titles) == 20
    completes = delivered()
    assert all(c.params.get("thread_ts") == root_ts for c in completes)


def test_a_file_slack_will_not_take_is_named_in_the_thread(stack: Stack) -> None:
    _, root_ts = create(stack, TWENTY_FILES, name="twenty")
    stack.mock.fail("files.completeUploadExternal", "file_uploads_disabled", times=None)
    upload(stack, root_ts, "in.csv")
    wait_shown(stack, "in.csv")

    def told() -> list[str]:
        posts = stack.mock.of("chat.postMessage")
        return [text_of(c) for c in posts if c.params.get("thread_ts") == root_ts]

    wait_until(lambda: any("could not deliver" in t for t in told()), what="the thread told")
    note = next(t for t in told() if "could not deliver" in t)
    assert "part00.txt" in note and "part19.txt" in note and "file_uploads_disabled" in note


def two_workspaces(tmp_path: Path) -> Stack:
    stack = oauth_stack(tmp_path)
    install(stack, team="T1", token="xoxb-one")
    install(stack, team="T2", token="xoxb-two")
    return stack


def create_in(stack: Stack, team: str) -> str:
    """/task create in ``team``'s C-channel; returns the root ts once ready."""
    stack.model.queue(answer_json(code=CSV_ROWS))
    channel = f"C-{team}"
    stack.slack.command("create list rows", team=team, channel=channel)
    return str(stack.mock.wait_for("chat.update", 1, channel=channel)[0].params["ts"])


def test_a_revoked_token_ends_that_workspaces_updates_only(tmp_path: Path) -> None:
    stack = two_workspaces(tmp_path)
    try:
        root2 = create_in(stack, "T2")
        root1 = create_in(stack, "T1")
        stack.mock.after_post("two.csv", lambda: stack.mock.revoke("xoxb-two"))
        upload(stack, root2, "two.csv", team="T2", channel="C-T2")
        wait_until(lambda: any(c.error == "token_revoked" for c in stack.mock.calls))
        upload(stack, root1, "one.csv", team="T1", channel="C-T1")
        wait_shown(stack, "one.csv")
        revoked = [c for c in stack.mock.calls if c.token == "xoxb-two" and c.error]
        assert len(revoked) == 1, [(c.method, c.error) for c in revoked]
    finally:
        close_stack(stack)


def test_one_workspace_rate_limited_does_not_stall_another(tmp_path: Path) -> None:
    stack = two_workspaces(tmp_path)
    try:
        root2 = create_in(stack, "T2")
        root1 = create_in(stack, "T1")
        stack.mock.rate_limit("chat.update", 8, token="xoxb-two")
        upload(stack, root2, "two.csv", team="T2", channel="C-T2")
        stack.mock.wait_for(
            "chat.update", 1, channel="C-T2", ts=run_post(stack, "two.csv").answer_ts
        )
        upload(stack, root1, "one.csv", team="T1", channel="C-T1")
        # Both arrive, the limited one after its Retry-After.
        done = {name: wait_shown(stack, name).seq for name in ("one.csv", "two.csv")}
        assert done["one.csv"] < done["two.csv"]
        limited = [c for c in stack.mock.of("chat.update") if c.status == 429]
        assert 1 <= len(limited) <= 3  # waited out, not hammered
    finally:
        close_stack(stack)
