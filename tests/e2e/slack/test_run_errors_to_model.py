"""A failed run's error can quote the user's file; the thread says, where they reply, that a
refine sends it to the model, and the operator's RUN_ERRORS_TO_MODEL decides how much."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import create, wait_run
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import text_of

PARSE_INTS = (
    "def run(input_path):\n"
    "    with open(input_path) as f:\n"
    "        return [int(line) for line in f]\n"
)
SECRET_ROW = "salary of Jane Roe 81000"


def fix_it(stack: Stack, root_ts: str, sharing: str) -> str:
    """Upload a file whose row the error quotes, then reply "fix it"; the refine's prompt."""
    stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U1",
            "text": "",
            "ts": "1800000000.000002",
            "thread_ts": root_ts,
            "files": [stack.mock.host_file("pay.txt", SECRET_ROW.encode(), "text/plain")],
        }
    )
    failed = wait_run(stack, "failed")
    assert "ValueError" in failed
    assert "Reply in this thread to change the code" in failed
    stack.model.queue(answer_json(code=PARSE_INTS, name="ints", change_summary="Same."))
    before = len(stack.model.prompts)
    stack.slack.event(
        {
            "type": "message",
            "channel": "C1",
            "user": "U1",
            "text": "fix it",
            "ts": "1800000000.000003",
            "thread_ts": root_ts,
        }
    )
    stack.mock.wait_until(
        lambda calls: len(stack.model.prompts) > before, timeout=30, what=f"a refine ({sharing})"
    )
    return str(stack.model.prompts[-1][1].content)


@pytest.fixture(params=["send", "redact", "off"])
def sharing_stack(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Stack, str]]:
    built = make_stack(tmp_path, run_errors_to_model=request.param)
    try:
        yield built, request.param
    finally:
        close_stack(built)


def test_the_thread_says_what_a_refine_sends_and_the_operator_decides(
    sharing_stack: tuple[Stack, str],
) -> None:
    stack, sharing = sharing_stack
    _, root_ts = create(stack, PARSE_INTS, name="ints")
    prompt = fix_it(stack, root_ts, sharing)
    notice = text_of(
        next(
            c
            for c in reversed(stack.mock.of("chat.update"))
            if "Reply in this thread" in text_of(c)
        )
    )
    assert "fix it" in prompt and "failed" in prompt
    if sharing == "send":
        assert "first lines are sent to the model." in notice
        assert SECRET_ROW in prompt and "ValueError" in prompt
    elif sharing == "redact":
        assert "sent to the model with quoted values redacted" in notice
        assert "pay.txt" in prompt
        assert SECRET_ROW not in prompt and "'<redacted>'" in prompt and "ValueError" in prompt
    else:
        assert "not sent to the model" in notice
        assert SECRET_ROW not in prompt and "ValueError" in prompt
