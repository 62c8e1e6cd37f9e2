"""A run's message goes through the states a reader can see: a quick run from queued straight
to its outcome (one update, within Slack's limits), a longer one through running."""

from __future__ import annotations

from tests.e2e.slack.conftest import Stack, drain
from tests.e2e.slack.test_connect_and_grid import file_event
from tests.e2e.slack.test_flows import create, wait_run
from tests.fakes.slack_api import text_of

QUICK = "def run(input_path):\n    return 'quick'\n"
SLOW = "import time\n\ndef run(input_path):\n    time.sleep(2.5)\n    return 'slow'\n"


def _upload(stack: Stack, root_ts: str) -> None:
    file = stack.mock.host_file("x.txt", b"x", "text/plain")
    status, _ = stack.slack.event(file_event(root_ts, file))
    assert status == 200


def _run_updates(stack: Stack) -> list[str]:
    return [text_of(c) for c in stack.mock.of("chat.update") if "Run `" in text_of(c)]


def test_a_quick_run_goes_from_queued_to_its_outcome_in_one_update(stack: Stack) -> None:
    _, root_ts = create(stack, QUICK, name="quick")
    _upload(stack, root_ts)
    wait_run(stack, "succeeded")
    drain(stack)
    (update,) = _run_updates(stack)
    assert ": succeeded" in update and "quick" in update


def test_a_longer_run_is_shown_running_before_its_outcome(stack: Stack) -> None:
    _, root_ts = create(stack, SLOW, name="slow")
    _upload(stack, root_ts)
    running = wait_run(stack, "running")
    wait_run(stack, "succeeded")
    drain(stack)
    updates = _run_updates(stack)
    assert len(updates) == 2 and updates[0] == running and ": succeeded" in updates[1]
