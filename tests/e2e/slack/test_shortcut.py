"""The message shortcut "Run a Taskbot task": on a file in another channel it runs the chosen
task there and links back; the picker and the submission keep ``/task run``'s rule."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.slack.conftest import Stack, drain
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create, wait_run
from tests.e2e.slack.test_home import create_as
from tests.fakes.slack_api import text_of


def file_message(stack: Stack) -> dict[str, Any]:
    f = stack.mock.host_file("people.csv", PEOPLE)
    return {"type": "message", "user": "U5", "ts": "1800000000.000777", "text": "", "files": [f]}


def open_picker(stack: Stack, *, user: str, message: dict[str, Any]) -> dict[str, Any]:
    before = len(stack.mock.of("views.open"))
    status, _ = stack.slack.message_shortcut("run_on_file", message, channel="C9", user=user)
    assert status == 200
    call = stack.mock.wait_for("views.open", before + 1)[-1]
    assert call.ok, call.error
    view: dict[str, Any] = call.params["view"]
    return view


def options(stack: Stack, view: dict[str, Any], *, user: str, value: str = "") -> list[str]:
    status, body = stack.slack.suggest(
        view, action_id="task_pick", block_id="task", value=value, user=user
    )
    assert status == 200, body
    return [o["value"] for o in json.loads(body)["options"]]


def pick(task_id: str) -> dict[str, Any]:
    chosen = {"text": {"type": "plain_text", "text": task_id[:8]}, "value": task_id}
    return {"task": {"task_pick": {"type": "external_select", "selected_option": chosen}}}


def test_the_shortcut_runs_the_chosen_task_on_a_file_from_another_channel(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)  # U1's, in C1
    other = create_as(stack, user="U2", channel="C2", name="twos")
    view = open_picker(stack, user="U1", message=file_message(stack))
    assert view["callback_id"] == "shortcut_run" and "people.csv" in text_of(
        stack.mock.of("views.open")[-1]
    )
    offered = options(stack, view, user="U1")
    assert offered == [task_id]  # U2's task (in C2) and generators are not offered
    assert options(stack, view, user="U1", value="nothing-like-this") == []

    status, _ = stack.slack.submit_view(view, pick(task_id), user="U1")
    assert status == 200
    done = wait_run(stack, "succeeded")
    assert "ada" in done and "lin" in done
    thread = [c for c in stack.mock.of("chat.postMessage") if c.params.get("thread_ts") == root_ts]
    assert any("archives/C9/p1800000000.000777" in text_of(c) for c in thread)  # link back
    told = stack.mock.wait_for("chat.postEphemeral", channel="C9", user="U1")[-1]
    assert "Running" in text_of(told) and f"archives/C1/p{root_ts}" in text_of(told)
    with stack.services.uow() as uow:
        assert uow.runs.latest_for_task(other) is None


def test_nobody_runs_through_the_shortcut_a_task_they_could_not_run(stack: Stack) -> None:
    task_id, _ = create(stack, CSV_ROWS)  # U1's, in C1
    view = open_picker(stack, user="U3", message=file_message(stack))
    assert options(stack, view, user="U3") == []  # in C9, not C1, and not its creator
    status, _ = stack.slack.submit_view(view, pick(task_id), user="U3")  # a forged pick
    assert status == 200
    refused = stack.mock.wait_for("chat.postEphemeral", channel="C9", user="U3")[-1]
    assert "belongs to <#C1>" in text_of(refused)
    with stack.services.uow() as uow:
        assert uow.runs.latest_for_task(task_id) is None


def test_the_shortcut_on_a_message_without_a_file_says_so(stack: Stack) -> None:
    message = {"type": "message", "user": "U5", "ts": "1800000000.000888", "text": "hi"}
    status, _ = stack.slack.message_shortcut("run_on_file", message, channel="C9", user="U1")
    assert status == 200
    said = stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "response_url" and "no file" in text_of(c)],
        what="the answer",
    )
    drain(stack)  # the shortcut handled to its end
    assert said and stack.mock.of("views.open") == []
