"""Runs nobody typed (issue 18), end to end through signed HTTP and the mock Slack API: the
Workflow Builder step, schedules and pinned versions."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import create, wait_run
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of

V1 = "def run(input_path):\n    with open(input_path) as f:\n        return {'v1_chars': len(f.read())}\n"
V2 = "def run(input_path):\n    with open(input_path) as f:\n        return {'v2_words': len(f.read().split())}\n"
_executions = itertools.count(1)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    # The ticker is driven by the test (tick(now=...): the clock advanced by hand, since the
    # sandbox's own timers must keep real time), not by its background loop.
    built = make_stack(tmp_path, schedule_check_seconds=0)
    built.mock.add_user("U1", tz="Europe/Paris")
    try:
        yield built
    finally:
        close_stack(built)


def refine(stack: Stack, root_ts: str, code: str) -> None:
    stack.model.queue(answer_json(code=code, name="rows", change_summary="Counts words."))
    before = len([c for c in stack.mock.of("chat.update") if "v2" in text_of(c)])
    stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "count words instead",
            "ts": "1800000000.000009",
            "thread_ts": root_ts,
        }
    )
    stack.mock.wait_until(
        lambda calls: (
            len([c for c in calls if c.method == "chat.update" and "v2" in text_of(c)]) > before
        ),
        what="v2 ready",
    )


def step(stack: Stack, task_id: str, **inputs: Any) -> str:
    """Slack runs the workflow step with these inputs; returns the execution id."""
    execution = f"Fx{next(_executions):04d}"
    token = f"xwfp-{execution}"
    stack.mock.start_execution(execution, token=token)
    status, _ = stack.slack.event(
        {
            "type": "function_executed",
            "function": {
                "id": "Fn0001",
                "callback_id": "run_task",
                "title": "Run a Taskbot task",
                "description": "",
                "type": "app",
                "input_parameters": [],
                "output_parameters": [],
                "app_id": "A1",
                "date_created": 1700000000,
                "date_updated": 1700000000,
                "date_deleted": 0,
            },
            "inputs": {"task": task_id, "run_as": "U1", **inputs},
            "function_execution_id": execution,
            "workflow_execution_id": "Wx0001",
            "event_ts": "1700000000.000001",
            "bot_access_token": token,
        }
    )
    assert status == 200
    return execution


def completion(stack: Stack, execution: str) -> Call:
    def done(calls: list[Call]) -> list[Call]:
        return [
            c
            for c in calls
            if c.method.startswith("functions.complete")
            and c.params.get("function_execution_id") == execution
        ]

    (call,) = stack.mock.wait_until(done, timeout=30, what=f"{execution} completed")
    return call


def ephemeral(stack: Stack, containing: str) -> str:
    found: list[str] = stack.mock.wait_until(
        lambda calls: [
            text_of(c) for c in calls if c.method == "response_url" and containing in text_of(c)
        ],
        what=f"an answer with {containing!r}",
    )
    return found[-1]


def test_the_workflow_step_runs_the_task_and_completes_with_its_outputs(stack: Stack) -> None:
    task_id, _ = create(stack, V1)
    execution = step(stack, task_id, text="hello")
    done = completion(stack, execution)
    assert done.method == "functions.completeSuccess" and done.token == f"xwfp-{execution}"
    outputs = done.params["outputs"]
    assert outputs["status"] == "succeeded"
    assert "v1_chars" in outputs["result"] and "5" in outputs["result"]
    assert outputs["run_link"].startswith("https://test.slack.com/archives/C1/p")
    assert "of v1" in wait_run(stack, "succeeded")  # recorded and shown like any run


def test_the_workflow_step_fails_clearly_for_a_task_its_person_may_not_run(stack: Stack) -> None:
    task_id, _ = create(stack, V1)
    done = completion(stack, step(stack, task_id, text="hi", run_as="U2"))
    assert done.method == "functions.completeError"
    assert "only its creator" in done.params["error"]
    assert not [c for c in stack.mock.of("chat.postMessage") if "queued" in text_of(c)]
    missing = completion(stack, step(stack, task_id))  # no file and no text
    assert (
        missing.method == "functions.completeError" and "file or a text" in missing.params["error"]
    )


def test_pinning_changes_the_version_the_step_and_the_schedule_run(stack: Stack) -> None:
    task_id, root_ts = create(stack, V1)
    refine(stack, root_ts, V2)
    stack.slack.command(f"pin {task_id[:8]} v1")
    assert "v1 pinned" in ephemeral(stack, "pinned by")
    shown = [
        c for c in stack.mock.of("chat.postMessage") if "v1 pinned" in text_of(c)
    ]  # the thread says which version is pinned
    assert shown and shown[0].params["thread_ts"] == root_ts
    root = [c for c in stack.mock.of("chat.update") if c.params["ts"] == root_ts][-1]
    assert "v2 · ready · :pushpin: v1 pinned" in text_of(root)  # the root message too

    pinned = completion(stack, step(stack, task_id, text="two words"))
    assert "v1_chars" in pinned.params["outputs"]["result"]

    # A schedule, on the newest file in the thread.
    stack.mock.thread(
        "C1",
        root_ts,
        [
            {"ts": root_ts, "user": "UBOT", "bot_id": "BBOT", "text": "task"},
            {"ts": "1800000000.1", "user": "U1", "files": [stack.mock.host_file("a.txt", b"x")]},
            {
                "ts": "1800000000.2",
                "user": "U1",
                "files": [stack.mock.host_file("b.txt", b"three short words")],
            },
        ],
    )
    stack.slack.command(f"schedule {task_id[:8]} daily at 09:00")
    said = ephemeral(stack, "Scheduled task")
    assert "every day at 09:00 (Europe/Paris)" in said and "`b.txt`" in said
    assert "v1 (pinned)" in said
    ticker = stack.server.slack.flows.ticker
    tomorrow = datetime.now(UTC) + timedelta(days=1, hours=1)
    (first,) = ticker.tick(now=tomorrow)
    assert stack.services.runs.wait(first, timeout=30).version_number == 1

    stack.slack.command(f"unpin {task_id[:8]}")
    ephemeral(stack, "Unpinned by")
    (second,) = ticker.tick(now=tomorrow + timedelta(days=1))
    run = stack.services.runs.wait(second, timeout=30)
    assert run.version_number == 2 and run.input_name == "b.txt"
    assert b"v2_words" in (run.result or b"") and b"3" in (run.result or b"")
    assert "of v2 on `b.txt`" in wait_run(stack, "succeeded", count=3)


def test_a_schedule_that_fails_three_times_pauses_and_tells_its_owner(stack: Stack) -> None:
    broken = "def run(input_path):\n    raise ValueError('no luck')\n"
    stack.model.queue(answer_json(code=broken, name="gen"))
    stack.slack.command("create --type generator always fails")
    stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "chat.update" and "ready" in text_of(c)],
        what="ready",
    )
    task_id = stack.task_ids()[0]
    stack.slack.command(f"schedule {task_id[:8]} every hour")
    ephemeral(stack, "Scheduled task")
    ticker = stack.server.slack.flows.ticker
    start = datetime.now(UTC)
    for hour in (1, 2, 3):
        (run_id,) = ticker.tick(now=start + timedelta(hours=hour, minutes=1))
        assert stack.services.runs.wait(run_id, timeout=30).final
    # The third failure is counted, the schedule paused: no fourth run.
    assert ticker.tick(now=start + timedelta(hours=4, minutes=1)) == []
    dm = [c for c in stack.mock.of("chat.postMessage") if c.params.get("channel") == "U1"]
    assert len(dm) == 1 and "is paused" in text_of(dm[0]) and "3 times in a row" in text_of(dm[0])
    stack.slack.command("schedules")
    assert "paused after 3 failed runs" in ephemeral(stack, "Your schedules")
