"""Fair shares through Slack: a second user's create reaches the model in turn while the first
floods; over a limit the answer says busy and how many are ahead; files beyond the cap of one
message are named, not run."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.services.fairness import Ticket
from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create, wait_run
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of


def _prompts_reach(stack: Stack, count: int, timeout: float = 30) -> None:
    """Until the model was asked ``count`` times (woken by each call, with a deadline)."""
    reached = stack.model.wait_for_prompts(count, timeout=timeout)
    assert reached, f"{len(stack.model.prompts)} of {count} model calls"


def _waiting_in_pool(stack: Stack, count: int, timeout: float = 30) -> None:
    """Poll (with a deadline) until ``count`` creates wait in the model's pool."""
    pool = stack.server.slack.flows.generators
    deadline = time.monotonic() + timeout
    while pool.waiting() < count:
        assert time.monotonic() < deadline, f"{pool.waiting()} of {count} waiting for the model"
        time.sleep(0.02)


def _ready(calls: list[Call]) -> int:
    return len([c for c in calls if c.method == "chat.update" and "is ready" in text_of(c)])


def _asked_by(stack: Stack) -> list[str]:
    return ["UB" if "for UB" in prompt[-1].content else "UA" for prompt in stack.model.prompts]


@pytest.fixture
def unlimited(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path, fair_user_generations=0, fair_channel_generations=0)
    try:
        yield built
    finally:
        close_stack(built)


def test_a_second_users_create_reaches_the_model_in_turn_while_the_first_floods(
    unlimited: Stack,
) -> None:
    stack = unlimited
    pool = stack.server.slack.flows.generators
    dealt: list[str] = []  # whose job the pool hands out next, once its threads are busy
    take = pool._next

    def spy() -> Ticket | None:
        ticket = take()
        if ticket is not None:
            dealt.append(ticket.user)
        return ticket

    pool._next = spy  # type: ignore[method-assign]  # the threads' next take goes through it
    stack.model.hold()  # a slow model: the pool's 8 threads fill up and a backlog builds
    flood = 14
    stack.model.queue(*[answer_json(code=CSV_ROWS) for _ in range(flood + 1)])
    for i in range(flood):
        assert stack.slack.command(f"create rows {i} for UA", user="UA")[0] == 200
    _prompts_reach(stack, 8)  # every thread is with the model; the rest of UA's wait
    _waiting_in_pool(stack, flood - 8)  # all of UA's backlog is queued for the model
    assert stack.slack.command("create rows for UB", user="UB")[0] == 200
    _waiting_in_pool(stack, flood - 8 + 1)  # and UB's create behind it, before any call ends
    stack.model.release()
    stack.mock.wait_until(
        lambda calls: _ready(calls) >= flood + 1,
        timeout=60,
        what="every task ready",
    )
    # First come first served deals UB's out after the 6 of UA's that waited; in turn, right
    # after the one of UA's next in line. (The order the model is asked in can differ by a
    # place or two: each job does its own work before it asks.)
    assert dealt[:2] == ["UA", "UB"], dealt
    asked = _asked_by(stack)
    assert asked.index("UB") < flood, asked
    assert asked.count("UA") == flood


@pytest.fixture
def one_at_a_time(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path, fair_user_generations=1)
    try:
        yield built
    finally:
        close_stack(built)


def test_over_the_generation_limit_the_answer_is_busy_and_nothing_is_lost(
    one_at_a_time: Stack,
) -> None:
    stack = one_at_a_time
    stack.model.hold()
    stack.model.queue(answer_json(code=CSV_ROWS), answer_json(code=CSV_ROWS))
    stack.slack.command("create rows for UA", user="UA")
    _prompts_reach(stack, 1)
    stack.slack.command("create more rows", user="UA", response_name="busy")
    busy = text_of(stack.mock.wait_for("response_url")[0])
    assert "Busy: you already have 1 request with the model (at most 1 at once)" in busy
    assert "ahead of you" in busy and "Nothing was started" in busy
    assert len(stack.task_ids()) == 1  # the refused create stored nothing
    stack.model.release()
    stack.mock.wait_until(lambda calls: _ready(calls) >= 1, what="the first task ready")
    stack.model.hold()
    stack.slack.command("create more rows", user="UA")  # its place came back
    _prompts_reach(stack, 2)
    stack.model.release()
    stack.mock.wait_until(lambda calls: _ready(calls) >= 2, what="both ready")
    assert len(stack.task_ids()) == 2


def test_files_beyond_the_cap_of_one_message_are_named_and_not_run(stack: Stack) -> None:
    _, root_ts = create(stack, CSV_ROWS)
    files = [stack.mock.host_file(f"f{i}.csv", PEOPLE) for i in range(7)]
    stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U2",
            "text": "",
            "ts": "1800000000.000077",
            "thread_ts": root_ts,
            "files": files,
        }
    )
    answer = stack.mock.wait_for("chat.postEphemeral")[0]
    assert answer.params["user"] == "U2"
    assert "Only the first 5 files of a message are run" in text_of(answer)
    assert "`f5.csv`, `f6.csv`" in text_of(answer)
    wait_run(stack, "succeeded", count=5)
    assert len(stack.mock.of("file")) == 5  # the other two were never downloaded
