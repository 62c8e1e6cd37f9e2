"""``/task delete <id>``: asks its creator with a Delete button; the click deletes."""

from __future__ import annotations

from tests.e2e.slack.conftest import Stack
from tests.e2e.slack.test_flows import CSV_ROWS, create
from tests.fakes.slack_api import Call, text_of


def answer(stack: Stack, name: str) -> Call:
    """The response_url message sent to ``/response/<name>`` (waits for it)."""
    for count in range(1, 20):
        calls = stack.mock.wait_for("response_url", count)
        found = [c for c in calls if str(c.path).endswith(f"/response/{name}")]
        if found:
            return found[-1]
    raise AssertionError(f"nothing sent to /response/{name}")


def test_delete_asks_the_creator_then_the_button_deletes_and_marks_the_root(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    status, _ = stack.slack.command(f"delete {task_id[:8]}", response_name="ask")
    assert status == 200
    question = answer(stack, "ask")
    assert "cannot be undone" in text_of(question)
    button = question.params["blocks"][1]["elements"][0]
    assert button["action_id"] == "delete_task" and button["value"] == task_id
    assert button["style"] == "danger" and "confirm" in button
    assert stack.task_ids() == [task_id]  # asking deletes nothing

    updates = len(stack.mock.of("chat.update"))
    assert stack.slack.button(task_id, action_id="delete_task")[0] == 200
    root = stack.mock.wait_for("chat.update", updates + 1)[-1]
    assert root.params["ts"] == root_ts and "was deleted by <@U1>" in text_of(root)
    assert stack.task_ids() == []
    # The answer goes out after the root message is marked: wait for it, do not race it.
    told = [text_of(c) for c in stack.mock.wait_for("response_url", 2)]
    assert any(f"Deleted task {task_id[:8]}" in t for t in told), told


def test_only_the_creator_is_offered_or_allowed_the_delete(stack: Stack) -> None:
    task_id, _ = create(stack, CSV_ROWS)
    stack.slack.command(f"delete {task_id[:8]}", user="U2", response_name="other")
    refused = answer(stack, "other")
    assert "Only the person who created this task can delete it." in text_of(refused)
    stack.slack.button(task_id, action_id="delete_task", user="U2")
    stack.mock.wait_for("response_url", 2)
    assert stack.task_ids() == [task_id]


def test_delete_without_an_id_answers_with_usage(stack: Stack) -> None:
    status, body = stack.slack.command("delete")
    assert status == 200 and "Which task? `/task delete <id>`" in body
