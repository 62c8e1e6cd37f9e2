"""A generation's steps, live in its thread: streamed as a plan where Slack streams, updated in
place where it does not; and its Stop button."""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import Any

from bot.services.codegen import ChatMessage, ModelReply
from tests.e2e.slack.conftest import Stack
from tests.e2e.slack.test_flows import CSV_ROWS, FIXED, create
from tests.e2e.slack.test_home import create_as
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of

PLAN = ["understand", "write", "check", "ready"]


def transitions(calls: list[Call]) -> list[tuple[str, str]]:
    """Each (step, status) as the stream showed it, in the order it was sent."""
    seen: list[tuple[str, str]] = []
    for call in calls:
        for chunk in call.params.get("chunks") or []:
            if chunk["type"] == "task_update":
                pair = (chunk["id"], chunk["status"])
                if not seen or seen[-1] != pair:
                    seen.append(pair)
    return seen


def test_a_create_streams_its_steps_in_order(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    stream = [c for c in stack.mock.calls if c.method.startswith(("chat.st", "chat.app"))]
    assert next(c.method for c in stream) == "chat.startStream"
    assert [c.method for c in stream][-1] == "chat.stopStream"
    assert all(c.ok for c in stream), [(c.method, c.error) for c in stream]
    start = stream[0]
    assert start.params["thread_ts"] == root_ts and start.params["channel"] == "C1"
    assert start.params["recipient_user_id"] == "U1"
    assert start.params["recipient_team_id"] == "T1"
    assert start.params["task_display_mode"] == "plan"
    assert [c["id"] for c in start.params["chunks"]] == PLAN  # the whole plan up front

    shown = transitions(stream[1:])
    started = [step for step, status in shown if status == "in_progress"]
    completed = [step for step, status in shown if status == "complete"]
    assert started == PLAN, shown
    assert completed == PLAN  # each step done, in order
    checked = [
        c
        for c in stream
        for ch in c.params.get("chunks") or []
        if ch.get("details") == "1 of 1 checks passed"
    ]
    assert checked
    # Live: the stream ended before the root message said ready.
    ready = [c for c in stack.mock.of("chat.update") if "ready" in text_of(c)][-1]
    assert stream[-1].seq < ready.seq


def test_without_streaming_the_steps_update_one_message_in_place(stack: Stack) -> None:
    stack.mock.surfaces.streaming_off = True
    task_id = create_as(stack, user="U1", channel="C1", name="rows")
    root_ts = stack.services.tasks.get(task_id).thread_ts
    progress = [
        c
        for c in stack.mock.of("chat.postMessage")
        if c.params.get("thread_ts") == root_ts and c.params.get("text") == "Progress"
    ]
    assert len(progress) == 1
    ts = progress[0].answer_ts
    updates = [c for c in stack.mock.of("chat.update") if c.params["ts"] == ts]
    texts = [text_of(c) for c in updates]
    assert any("◐ Writing the code" in t for t in texts)
    assert any("◐ Running its checks" in t for t in texts)
    assert "● Ready" in texts[-1], texts
    assert "● Understanding the request" in texts[-1]
    order = next(i for i, t in enumerate(texts) if "◐ Writing" in t)
    assert order < next(i for i, t in enumerate(texts) if "◐ Running its checks" in t)
    final_blocks = updates[-1].params["blocks"]
    assert not any(b["type"] == "actions" for b in final_blocks)  # no Stop once it ended


class Gate:
    """Holds the model's next answer until released, and says when it is being waited on."""

    def __init__(self, stack: Stack) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self._generate = stack.model.generate

        def held(messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]) -> ModelReply:
            self.entered.set()
            assert self.release.wait(20)
            return self._generate(messages, schema=schema)

        stack.model.generate = held  # type: ignore[method-assign]


def test_stop_ends_a_refinement_failed_and_keeps_the_previous_version(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    gate = Gate(stack)
    stack.model.queue(answer_json(code=FIXED, name="rows", change_summary="Changed."))
    status, _ = stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U2",
            "text": "return a flag instead",
            "ts": "1800000000.000050",
            "thread_ts": root_ts,
        }
    )
    assert status == 200
    assert gate.entered.wait(20)
    placeholder = [c for c in stack.mock.of("chat.postMessage") if "next version" in text_of(c)]
    buttons = [b for b in placeholder[-1].params["blocks"] if b["type"] == "actions"]
    assert buttons[0]["elements"][0]["action_id"] == "stop_generation"

    status, _ = stack.slack.button(task_id, user="U7", action_id="stop_generation")
    assert status == 200
    refused = stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "response_url" and "Only" in text_of(c)],
        what="the refusal",
    )
    assert "<@U2>" in text_of(refused[-1])
    status, _ = stack.slack.button(task_id, user="U2", action_id="stop_generation")
    assert status == 200
    stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "response_url" and "Stopping" in text_of(c)],
        what="the stop",
    )
    gate.release.set()
    failed = stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "chat.update" and "Stopped" in text_of(c)],
        what="the refinement ended stopped",
    )
    assert failed[-1].params["ts"] == placeholder[-1].answer_ts
    task = stack.services.tasks.get(task_id)
    assert task.current_version == 1
    with stack.services.uow() as uow:
        assert uow.tasks.latest_version_number(task_id) == 1
