"""Cost in Slack: a short cost line on the version and run messages, `/task usage`, and a spent
budget refused before the model is asked, told to the user alone with when it resets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.slack.conftest import Stack, close_stack, drain, make_stack
from tests.e2e.slack.test_flows import create, wait_run
from tests.fakes.openai_server import COUNT_LINES
from tests.fakes.slack_api import text_of


@pytest.fixture
def budget_stack(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path, budget_user_daily_tokens=30)  # the fake model: 30 per answer
    try:
        yield built
    finally:
        close_stack(built)


def test_cost_lines_usage_and_a_spent_budget(budget_stack: Stack) -> None:
    stack = budget_stack
    task_id, root_ts = create(stack, COUNT_LINES)
    metadata = next(
        c for c in stack.mock.of("chat.postMessage") if c.params.get("thread_ts") == root_ts
    )
    assert "fake-model · 1 request · 30 tokens · cost unknown · checks" in text_of(metadata)

    stack.slack.command(f"run {task_id[:8]} a b c")
    assert "sandbox CPU" in wait_run(stack, "succeeded")

    stack.slack.command("usage", response_name="usage1")
    usage = text_of(stack.mock.wait_for("response_url")[-1])
    assert "Spent today (UTC):* 30 tokens · cost unknown" in usage and "1 run" in usage
    assert "<@U1>" in usage and f"`{task_id[:8]}` rows" in usage
    assert ":no_entry: user model tokens: 30 tokens of 30 tokens" in usage

    posts, prompts = len(stack.mock.of("chat.postMessage")), len(stack.model.prompts)
    stack.slack.command("create count the words", response_name="refused")
    refused = text_of(stack.mock.wait_for("response_url", 2)[-1])
    assert "You have used today's model tokens budget" in refused and "resets at" in refused
    drain(stack)  # the refused create handled to its end: nothing more will come of it
    assert len(stack.model.prompts) == prompts  # the model was not asked
    assert len(stack.mock.of("chat.postMessage")) == posts  # no root message, nothing half-done

    stack.slack.command("usage", user="U9", channel="C9", response_name="other")
    other = text_of(stack.mock.wait_for("response_url", 3)[-1])
    assert task_id[:8] not in other and "1 task in channels you are not in" in other
    assert ":no_entry:" not in other  # U9 has spent nothing of their own budget
