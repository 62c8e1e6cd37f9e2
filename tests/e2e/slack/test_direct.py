"""A file DM'd to Taskbot with a task id in the text runs that task (as ``/task run`` would
from that DM: for the task's creator), the result in the task's thread."""

from __future__ import annotations

from tests.e2e.slack.conftest import Stack
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create, wait_run
from tests.fakes.slack_api import text_of


def dm_file(stack: Stack, *, user: str, text: str, ts: str) -> None:
    status, _ = stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "D1",
            "channel_type": "im",
            "user": user,
            "text": text,
            "ts": ts,
            "files": [stack.mock.host_file("people.csv", PEOPLE)],
        }
    )
    assert status == 200


def test_a_dmd_file_with_a_task_id_runs_that_task(stack: Stack) -> None:
    task_id, root_ts = create(stack, CSV_ROWS)
    dm_file(stack, user="U1", text=f"run {task_id[:8]} on this please", ts="1800000000.000901")
    done = wait_run(stack, "succeeded")
    assert "ada" in done
    runs = [c for c in stack.mock.of("chat.postMessage") if "queued" in text_of(c)]
    assert runs[-1].params["thread_ts"] == root_ts and runs[-1].params["channel"] == "C1"
    told = stack.mock.wait_for("chat.postMessage", channel="D1")[-1]
    assert "Running" in text_of(told) and f"archives/C1/p{root_ts}" in text_of(told)


def test_a_dmd_file_runs_nothing_without_an_id_or_for_someone_without_rights(
    stack: Stack,
) -> None:
    task_id, _ = create(stack, CSV_ROWS)
    dm_file(stack, user="U1", text="here you go", ts="1800000000.000902")
    asked = stack.mock.wait_for("chat.postEphemeral", channel="D1", user="U1")[-1]
    assert "task's id" in text_of(asked)
    dm_file(stack, user="U2", text=task_id[:8], ts="1800000000.000903")
    refused = stack.mock.wait_for("chat.postEphemeral", channel="D1", user="U2")[-1]
    assert "belongs to <#C1>" in text_of(refused)
    with stack.services.uow() as uow:
        assert uow.runs.latest_for_task(task_id) is None
