"""The App Home tab: each viewer sees the tasks they could run with ``/task run`` (their own,
and those of channels they are in), Run and Show buttons, their runs; refreshed on changes."""

from __future__ import annotations

from typing import Any

from tests.e2e.slack.conftest import Stack, drain
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of

HELLO = "def run(input_path):\n    return 'hello'\n"


def create_as(stack: Stack, *, user: str, channel: str, name: str) -> str:
    stack.model.queue(answer_json(code=HELLO, name=name, title=name.title()))
    before = len([c for c in stack.mock.of("chat.update") if "ready" in text_of(c)])
    status, _ = stack.slack.command(
        f"create --type generator say hello ({name})", user=user, channel=channel
    )
    assert status == 200
    stack.mock.wait_until(
        lambda calls: (
            len([c for c in calls if c.method == "chat.update" and "ready" in text_of(c)]) > before
        ),
        what=f"task {name} ready",
    )
    return next(s.task.id for s in stack.services.tasks.list(limit=50) if s.task.name == name)


def open_home(stack: Stack, user: str, *, count: int = 1) -> dict[str, Any]:
    status, _ = stack.slack.event({"type": "app_home_opened", "user": user, "tab": "home"})
    assert status == 200
    call = stack.mock.wait_for("views.publish", count, user_id=user)[-1]
    assert call.ok, call.error
    view: dict[str, Any] = call.params["view"]
    return view


def shows(view: dict[str, Any], task_id: str) -> bool:
    return task_id[:8] in text_of(Call("views.publish", {"view": view}, None))


def test_two_users_each_see_the_tasks_they_can_run(stack: Stack) -> None:
    stack.mock.surfaces.join("C1", "U1", "U3")
    stack.mock.surfaces.join("C2", "U2")
    mine = create_as(stack, user="U1", channel="C1", name="ones")
    theirs = create_as(stack, user="U2", channel="C2", name="twos")

    one = open_home(stack, "U1")
    assert one["type"] == "home" and shows(one, mine) and not shows(one, theirs)
    two = open_home(stack, "U2")
    assert shows(two, theirs) and not shows(two, mine)
    member = open_home(stack, "U3")  # in C1, created nothing: C1's task, not C2's
    text = text_of(Call("views.publish", {"view": member}, None))
    assert "Tasks in your channels" in text and shows(member, mine) and not shows(member, theirs)
    stranger = open_home(stack, "U4")
    assert not shows(stranger, mine) and not shows(stranger, theirs)
    assert "How to use Taskbot" in text_of(Call("views.publish", {"view": stranger}, None))
    buttons = [
        e["action_id"] for b in one["blocks"] if b["type"] == "actions" for e in b["elements"]
    ]
    assert buttons == ["home_run", "home_show"]
    conversations = stack.mock.of("users.conversations")
    assert {c.params["user"] for c in conversations} == {"U1", "U2", "U3", "U4"}


def test_home_buttons_refuse_a_task_out_of_reach_and_run_one_in_reach(stack: Stack) -> None:
    stack.mock.surfaces.join("C1", "U1", "U3")
    stack.mock.surfaces.join("C2", "U2")
    ones = create_as(stack, user="U1", channel="C1", name="ones")
    twos = create_as(stack, user="U2", channel="C2", name="twos")
    open_home(stack, "U3")

    status, _ = stack.slack.view_button(twos, action_id="home_run", user="U3")
    assert status == 200
    refusal = stack.mock.wait_for("chat.postMessage", 1, channel="U3")[-1]
    assert "belongs to <#C2>" in text_of(refusal)
    status, _ = stack.slack.view_button(twos, action_id="home_show", user="U3")
    assert status == 200
    stack.mock.wait_for("chat.postMessage", 2, channel="U3")
    drain(stack)  # both clicks handled to their end
    assert stack.mock.of("views.open") == []
    with stack.services.uow() as uow:
        assert uow.runs.latest_for_task(twos) is None

    status, _ = stack.slack.view_button(ones, action_id="home_show", user="U3")
    assert status == 200
    modal = stack.mock.wait_for("views.open")[-1]
    assert modal.ok and "return 'hello'" in text_of(modal)

    status, _ = stack.slack.view_button(ones, action_id="home_run", user="U3")
    assert status == 200
    stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "chat.update" and "succeeded" in text_of(c)],
        what="the run from Home",
    )
    # The run changed: U3's Home is published again (once the debounce is over) with it.
    refreshed = stack.mock.wait_until(
        lambda calls: [
            c
            for c in calls
            if c.method == "views.publish"
            and c.params.get("user_id") == "U3"
            and "succeeded" in text_of(c)
        ],
        what="U3's Home with the run",
    )
    assert "Your recent runs" in text_of(refreshed[-1])
