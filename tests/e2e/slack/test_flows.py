"""Every flow of PRODUCT.md section 1, end to end through signed HTTP and the mock Slack API."""

from __future__ import annotations

import json
from typing import Any

from tests.e2e.slack.conftest import Stack, drain
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of

CSV_ROWS = (
    "import csv\n\ndef run(input_path):\n"
    "    with open(input_path, newline='') as f:\n"
    "        return [dict(r) for r in csv.DictReader(f)]\n"
)
COUNT_CHARS = "def run(input_path):\n    with open(input_path) as f:\n        return {'chars': len(f.read())}\n"
BROKEN = "def run(input_path):\n    return {}['nope']\n"
FIXED = "def run(input_path):\n    return {'fixed': True}\n"
GENERATOR = "def run(input_path):\n    return 'generated!'\n"
PEOPLE = b"name,country\nada,UK\nlin,CN\n"


def create(
    stack: Stack, code: str, *, text: str = "create list the rows of a csv", name: str = "rows"
) -> tuple[str, str]:
    """/task create; returns (task id, root message ts) once the task is ready."""
    stack.model.queue(answer_json(code=code, name=name, title=name.title()))
    before = len(stack.mock.of("chat.update"))
    status, _ = stack.slack.command(text)
    assert status == 200
    update = stack.mock.wait_for("chat.update", before + 1)[-1]
    assert "ready" in text_of(update), text_of(update)
    task_id = stack.task_ids()[0]
    return task_id, str(update.params["ts"])


def wait_run(stack: Stack, status: str, *, count: int = 1) -> str:
    """Wait until ``count`` run messages were updated to ``status``; returns the last one's text."""

    def matching(calls: list[Call]) -> list[str]:
        texts = [text_of(c) for c in calls if c.method == "chat.update"]
        found = [t for t in texts if "Run `" in t and f": {status}" in t]
        return found if len(found) >= count else []

    found: list[str] = stack.mock.wait_until(
        matching, timeout=30, what=f"{count} run message(s) {status}"
    )
    return found[-1]


def test_create_posts_root_then_metadata_code_and_ready(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    posts = stack.mock.of("chat.postMessage")
    root = posts[0]
    assert root.params["channel"] == "C1" and not root.params.get("thread_ts")
    assert "Generating a task for" in text_of(root) and task_id in text_of(root)
    thread = [p for p in posts if p.params.get("thread_ts") == root_ts]
    assert len(thread) == 2
    assert "Input:" in text_of(thread[0]) and "Imports:" in text_of(thread[0])
    assert "Checks:" in text_of(thread[0]) and "1 check passed" in text_of(thread[0])
    assert "csv.DictReader" in text_of(thread[1])
    ready = stack.mock.of("chat.update")[-1]
    assert ready.params["ts"] == root_ts and "v1" in text_of(ready)
    assert any(b.get("type") == "actions" for b in ready.params["blocks"])  # the Run button
    assert "list the rows of a csv" in stack.model.prompts[0][1].content
    assert all(c.token == "xoxb-test" for c in stack.mock.calls if c.method.startswith("chat."))


def test_files_in_the_thread_run_the_task_once_per_file(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    a = stack.mock.host_file("people.csv", PEOPLE)
    b = stack.mock.host_file("more.csv", b"name,country\nbo,SE\n")
    status, _ = stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U2",
            "text": "",
            "ts": "1800000000.000001",
            "thread_ts": root_ts,
            "files": [a, b],
        }
    )
    assert status == 200
    wait_run(stack, "succeeded", count=2)
    done = [c for c in stack.mock.of("chat.update") if "succeeded" in text_of(c)]

    def cells(call: Any) -> list[list[str]]:  # the records as Slack's table block
        (table,) = call.params["attachments"][0]["blocks"]
        return [[cell["text"] for cell in row] for row in table["rows"]]

    people = next(c for c in done if "people.csv" in text_of(c))
    assert cells(people) == [["name", "country"], ["ada", "UK"], ["lin", "CN"]]
    assert any(cells(c) == [["name", "country"], ["bo", "SE"]] for c in done)
    queued = [c for c in stack.mock.of("chat.postMessage") if "queued" in text_of(c)]
    assert len(queued) == 2 and all(c.params["thread_ts"] == root_ts for c in queued)
    assert [c.token for c in stack.mock.of("file")] == ["xoxb-test", "xoxb-test"]


def test_a_reply_refines_with_the_last_error_and_posts_the_diff(stack: Stack) -> None:
    task_id, root_ts = create(stack, BROKEN, name="broken")
    stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U1",
            "text": "",
            "ts": "1800000000.000002",
            "thread_ts": root_ts,
            "files": [stack.mock.host_file("x.txt", b"x", "text/plain")],
        }
    )
    failed = wait_run(stack, "failed")
    assert "KeyError" in failed and "nope" in failed
    stack.model.queue(
        answer_json(code=FIXED, name="broken", change_summary="Returns a value instead of failing.")
    )
    before = len(stack.mock.of("chat.update"))
    stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "<@UBOT> fix it",
            "ts": "1800000000.000003",
            "thread_ts": root_ts,
        }
    )
    updates = stack.mock.wait_for("chat.update", before + 2)
    summary = next(
        text_of(c)
        for c in updates[before:]
        if "v2" in text_of(c) and "Returns a value" in text_of(c)
    )
    assert "-    return {}['nope']" in summary and "+    return {'fixed': True}" in summary
    prompt = stack.model.prompts[-1][1].content
    assert "fix it" in prompt and "<@UBOT>" not in prompt
    assert "KeyError" in prompt and "return {}['nope']" in prompt
    root = updates[-1]
    assert root.params["ts"] == root_ts and "v2" in text_of(root)
    assert stack.services.tasks.get(task_id).current_version == 2


def test_task_run_with_text_and_without_a_file_opens_the_modal(stack: Stack) -> None:
    task_id, _ = create(stack, COUNT_CHARS, name="count_chars")
    status, _ = stack.slack.command(f"run {task_id[:6]} hello world")
    assert status == 200
    assert '"chars": 11' in wait_run(stack, "succeeded")
    stack.slack.command(f"run {task_id[:8]}")
    opened = stack.mock.wait_for("views.open")[0]
    view = opened.params["view"]
    assert view["callback_id"] == "run_with_file"
    assert view["blocks"][1]["element"]["type"] == "file_input"
    meta = view["private_metadata"]
    assert json.loads(meta)["task"] == task_id
    file = stack.mock.host_file("hello.txt", b"hey", "text/plain")
    status, _ = stack.slack.submit_files(meta, [file])
    assert status == 200
    wait_run(stack, "succeeded", count=2)


def test_the_run_button_opens_the_modal_and_runs_a_generator_directly(stack: Stack) -> None:
    task_id, _ = create(stack, COUNT_CHARS, name="count_chars")
    stack.slack.button(task_id)
    assert stack.mock.wait_for("views.open")[0].params["trigger_id"].startswith("trigger.b")
    gen_id, _ = create(stack, GENERATOR, text="create --type generator say something", name="gen")
    assert stack.services.tasks.get(gen_id).task_type == "generator"
    stack.slack.button(gen_id)
    assert "generated!" in wait_run(stack, "succeeded")


def test_list_show_and_help_answer_only_the_user(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    stack.slack.command("list", response_name="list1")
    listed = stack.mock.wait_for("response_url")[0]
    assert listed.params["response_type"] == "ephemeral"
    assert task_id[:8] in text_of(listed) and "rows" in text_of(listed) and "v1" in text_of(listed)
    stack.slack.command(f"show {task_id[:6]} v1", response_name="show1")
    shown = stack.mock.wait_for("response_url", 2)[-1]
    assert shown.params["response_type"] == "ephemeral"
    assert "csv.DictReader" in text_of(shown) and f"p{root_ts}" in text_of(shown)
    assert "check_defines_run: passed" in text_of(shown)
    status, body = stack.slack.command("help")
    assert status == 200 and "/task create" in json.loads(body)["text"]
    status, body = stack.slack.command("frobnicate")
    assert "I don't know `frobnicate`" in json.loads(body)["text"]


def test_errors_a_user_causes_get_a_short_answer_where_they_are(stack: Stack) -> None:
    stack.slack.command("show abcdef12", response_name="unknown")
    assert "No task with id 'abcdef12'" in text_of(stack.mock.wait_for("response_url")[0])
    stack.mock.fail("chat.postMessage", "not_in_channel", channel="C-ELSEWHERE")
    stack.model.queue(answer_json(code=CSV_ROWS))
    stack.slack.command("create something", channel="C-ELSEWHERE")
    invite = stack.mock.wait_for("response_url", 2)[-1]
    assert "/invite @Taskbot" in text_of(invite)
    assert stack.model.prompts == []  # nothing generated for a task nobody can see
    task_id, root_ts = create(stack, CSV_ROWS)
    big = stack.mock.host_file("big.csv", b"x")
    big["size"] = 21 * 2**20
    stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U1",
            "text": "",
            "ts": "1800000000.000009",
            "thread_ts": root_ts,
            "files": [big],
        }
    )
    warning = stack.mock.wait_for("chat.postEphemeral")[0]
    assert "too large" in text_of(warning) and warning.params["user"] == "U1"
    drain(stack)  # the upload handled to its end
    assert stack.mock.of("file") == []  # refused before downloading


def test_a_refinement_whose_checks_fail_is_refused_with_the_failing_check(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    failing = [
        {
            "name": "check_sorted",
            "code": "def check_sorted():\n    assert False, 'rows are not sorted'\n",
        }
    ]
    for _ in range(3):
        stack.model.queue(answer_json(code=CSV_ROWS, checks=failing))
    before = len(stack.mock.of("chat.update"))
    stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "sort the rows",
            "ts": "1800000000.000077",
            "thread_ts": root_ts,
        }
    )
    refused = stack.mock.wait_for("chat.update", before + 1)[-1]
    assert "v2 was kept as a draft" in text_of(refused)
    assert "check_sorted" in text_of(refused) and "rows are not sorted" in text_of(refused)
    assert stack.services.tasks.get(task_id).current_version == 1
