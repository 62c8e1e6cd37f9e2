"""Answers from the model shaped to break its readers, through ``python -m bot task create``:
each ends in a repair (the error sent back like any other) or one clear line, never a
traceback, and the task never stays ``generating``."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.test_cli import bot, env  # noqa: F401  (the fixture)
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer, answer_json

# Each of these escaped the repair loop on the first request before the parsers were bounded.
HOSTILE = {
    "a 60 KB chain of +": answer_json(
        code="X = " + "1+" * 30_000 + "1\ndef run(p):\n    return X\n"
    ),
    "a chain of unary minus": answer_json(
        code="X = " + "-" * 30_000 + "1\ndef run(p):\n    return 1\n"
    ),
    "not 20000 times": answer_json(
        code="X = " + "not " * 20_000 + "1\ndef run(p):\n    return 1\n"
    ),
    "JSON nested 100k deep": '{"code": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "unclosed JSON nested 100k deep": '{"a":' * 100_000,
    "think blocks never closed": "<think>" * 150_000 + answer_json(code=COUNT_LINES)[:10],
    "fences on one line": "```" * 300_000,
    "a null byte": answer_json(code="def run(p):\n    return 1\n\x00"),
}


@pytest.mark.parametrize("shape", sorted(HOSTILE))
def test_a_hostile_answer_is_repaired(
    tmp_path: Path,
    env: dict[str, str],  # noqa: F811  (the fixture imported above)
    openai_server: FakeOpenAIServer,
    shape: str,
) -> None:
    openai_server.reply(HOSTILE[shape])
    openai_server.reply_code(COUNT_LINES)
    created = bot(tmp_path, env, "task", "create", "count the lines")
    assert created.returncode == 0, created.stderr
    assert "Traceback" not in created.stderr
    assert COUNT_LINES in created.stdout
    assert len(openai_server.requests) == 2
    repair = openai_server.user_texts(1)
    assert "That answer cannot be used:" in repair


def test_only_hostile_answers_end_failed_in_one_line(
    tmp_path: Path,
    env: dict[str, str],  # noqa: F811
    openai_server: FakeOpenAIServer,
) -> None:
    for shape in ("a 60 KB chain of +", "JSON nested 100k deep", "a chain of unary minus"):
        openai_server.reply(HOSTILE[shape])
    failed = bot(tmp_path, env, "task", "create", "count the lines")
    assert failed.returncode == 1
    assert "Traceback" not in failed.stderr
    assert failed.stderr.startswith("error: The model's code was still invalid after 2 repair")
    assert len(failed.stderr.strip().splitlines()) == 1
    listed = bot(tmp_path, env, "task", "list")
    assert listed.returncode == 0, listed.stderr
    (row,) = listed.stdout.splitlines()[1:]
    assert row.split()[2] == "failed"
