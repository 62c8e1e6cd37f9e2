"""``python -m bot task ...`` as a person runs it: a real process, a fake model server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory

from storage.migrate import MIGRATIONS
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer, answer_json

ROOT = Path(__file__).resolve().parents[2]
V2 = COUNT_LINES.replace("sum(1 for _ in f)", "sum(1 for line in f if line.strip())")


def bot(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def env(tmp_path: Path, openai_server: FakeOpenAIServer) -> dict[str, str]:
    keep = {
        k: v for k, v in os.environ.items() if k in ("PATH", "LANG", "HOME", "TEST_POSTGRES_URL")
    }
    return {
        **keep,
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "5",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "LOG_LEVEL": "WARNING",
    }


def test_create_refine_show_list_export(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    created = bot(tmp_path, env, "task", "create", "count the lines of the input file")
    assert created.returncode == 0, created.stderr
    task_id = created.stdout.splitlines()[0]
    assert len(task_id) == 36
    assert '"name": "count_lines"' in created.stdout
    assert COUNT_LINES in created.stdout
    assert "count the lines of the input file" in openai_server.user_texts(0)

    openai_server.reply_code(V2, change_summary="Skips empty lines.")
    refined = bot(tmp_path, env, "task", "refine", task_id[:6], "skip empty lines")
    assert refined.returncode == 0, refined.stderr
    assert "# changed: Skips empty lines." in refined.stdout
    assert "+        return {'lines': sum(1 for line in f if line.strip())}" in refined.stdout
    assert "skip empty lines" in openai_server.user_texts(1)
    assert COUNT_LINES.strip() in openai_server.user_texts(1)

    shown = bot(tmp_path, env, "task", "show", task_id[:8], "--version", "1")
    assert shown.returncode == 0 and COUNT_LINES in shown.stdout and "(v1," in shown.stdout
    assert "# checks: 1 check passed" in shown.stdout
    assert "# check_defines_run: passed" in shown.stdout

    listed = bot(tmp_path, env, "task", "list")
    assert listed.returncode == 0
    assert task_id in listed.stdout and "v2" in listed.stdout and "count_lines" in listed.stdout

    exported = bot(tmp_path, env, "task", "export", task_id[:6])
    assert exported.returncode == 0, exported.stderr
    folder = tmp_path / "user_tasks" / task_id
    assert (folder / "function.py").read_text() == V2
    assert json.loads((folder / "metadata.json").read_text())["version"] == 2
    assert len(openai_server.requests) == 2


def test_generator_type(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(
        "import random\n\ndef run(input_path):\n    return [random.random() for _ in range(3)]\n"
    )
    created = bot(tmp_path, env, "task", "create", "--type", "generator", "three random numbers")
    assert created.returncode == 0, created.stderr
    assert '"task_type": "generator"' in created.stdout
    assert "called with None" in openai_server.all_text(0)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("task", "show", "abcdef12"), "error: No task with id 'abcdef12'."),
        (("task", "show", "abc"), "error: Task ids need at least 6 characters (got 'abc')."),
        (("task", "export", "0123456789"), "error: No task with id '0123456789'."),
    ],
)
def test_errors_are_one_clear_line(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    result = bot(tmp_path, env, *args)
    assert result.returncode == 1
    assert result.stderr.strip() == message
    assert "Traceback" not in result.stderr


def test_generation_failure_and_unreachable_model(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    for _ in range(3):
        openai_server.reply(answer_json(code="import requests\ndef run(p):\n    return 1\n"))
    failed = bot(tmp_path, env, "task", "create", "fetch a page")
    assert failed.returncode == 1
    assert failed.stderr.startswith(
        "error: The model's code was still invalid after 2 repair rounds"
    )
    assert len(failed.stderr.strip().splitlines()) == 1
    unreachable = bot(
        tmp_path, {**env, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}, "task", "create", "x y"
    )
    assert unreachable.returncode == 1
    assert unreachable.stderr.strip().startswith("error: The model server is unreachable")


def test_serve_without_slack_settings_says_what_is_missing(
    tmp_path: Path, env: dict[str, str]
) -> None:
    result = bot(tmp_path, env)
    assert result.returncode == 2
    assert "SLACK_SIGNING_SECRET" in result.stderr and "SLACK_BOT_TOKEN" in result.stderr
    assert ".env" in result.stderr


def test_migrate_creates_the_schema_on_an_empty_file(tmp_path: Path, env: dict[str, str]) -> None:
    result = bot(tmp_path, {**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'fresh.db'}"}, "migrate")
    assert result.returncode == 0, result.stderr
    head = ScriptDirectory(str(MIGRATIONS)).get_current_head()  # the newest migration
    assert result.stdout.strip() == f"database at revision {head}"


@pytest.mark.postgres
def test_migrate_on_postgres_then_tasks_work(
    tmp_path: Path, env: dict[str, str], postgres_url: str, openai_server: FakeOpenAIServer
) -> None:
    pg = {**env, "DATABASE_URL": postgres_url}
    before = bot(tmp_path, pg, "task", "list")
    assert before.returncode == 2 and "python -m bot migrate" in before.stderr
    result = bot(tmp_path, pg, "migrate")
    assert result.returncode == 0, result.stderr
    openai_server.reply_code(COUNT_LINES)
    created = bot(tmp_path, pg, "task", "create", "count the lines")
    assert created.returncode == 0, created.stderr


def test_task_run_prints_the_result_of_a_task_made_by_task_create(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    task_id = bot(
        tmp_path, env, "task", "create", "count the lines of the input file"
    ).stdout.splitlines()[0]
    data = tmp_path / "three.txt"
    data.write_text("a\nb\nc\n")
    ran = bot(tmp_path, env, "task", "run", task_id[:6], "--input", str(data))
    assert ran.returncode == 0, ran.stderr
    assert json.loads(ran.stdout) == {"lines": 3}
    assert "succeeded in" in ran.stderr
    text = bot(tmp_path, env, "task", "run", task_id[:6], "--text", "one\ntwo")
    assert json.loads(text.stdout) == {"lines": 2}
    missing = bot(tmp_path, env, "task", "run", task_id[:6])
    assert missing.returncode == 1 and "needs an input file" in missing.stderr


def test_task_run_reports_a_failure_and_exits_non_zero(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code("def run(input_path):\n    raise ValueError('bad input: no header')\n")
    task_id = bot(tmp_path, env, "task", "create", "parse it").stdout.splitlines()[0]
    ran = bot(tmp_path, env, "task", "run", task_id, "--text", "x")
    assert ran.returncode == 1
    assert "failed: ValueError: bad input: no header" in ran.stderr
    assert "--- traceback ---" in ran.stderr and ran.stdout == ""


@pytest.mark.skipif(
    os.geteuid() != 0, reason="this machine's isolation (root, namespaces) is asserted"
)
def test_doctor_reports_the_isolation(tmp_path: Path, env: dict[str, str]) -> None:
    result = bot(tmp_path, env, "doctor")
    assert result.returncode == 0, result.stdout
    assert "network_namespace  True" in result.stdout and "seccomp            True" in result.stdout
    assert "The sandbox can isolate generated code on this host." in result.stdout


def test_show_prints_the_cost_and_usage_the_spend_and_budgets(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    env = {**env, "OPENAI_MODEL": "gpt-4o-mini", "BUDGET_USER_DAILY_TOKENS": "150"}
    openai_server.reply_code(COUNT_LINES, prompt_tokens=100, completion_tokens=50)
    task_id = bot(tmp_path, env, "task", "create", "count lines").stdout.splitlines()[0]
    shown = bot(tmp_path, env, "task", "show", task_id[:6])
    assert "# cost: fake-model-1 · 1 request · 150 tokens · $0.000045 · checks" in shown.stdout
    refused = bot(tmp_path, env, "task", "create", "count words")
    assert refused.returncode == 1 and len(openai_server.requests) == 1
    assert refused.stderr.startswith("error: You have used today's model tokens budget")
    assert "resets at" in refused.stderr and len(refused.stderr.splitlines()) == 1
    usage = bot(tmp_path, env, "task", "usage")
    assert usage.returncode == 0, usage.stderr
    assert "150 tokens, $0.000045" in usage.stdout and "1 model request" in usage.stdout
    assert f"{task_id[:8]} count_lines" in usage.stdout
    assert "user      model tokens  150 tokens of 150 tokens  SPENT" in usage.stdout


def test_pin_then_unpin_from_the_terminal(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.reply_code(COUNT_LINES)
    task_id = bot(tmp_path, env, "task", "create", "count lines").stdout.splitlines()[0]
    openai_server.reply_code(V2, change_summary="Skips empty lines.")
    assert bot(tmp_path, env, "task", "refine", task_id[:8], "skip empty").returncode == 0
    pinned = bot(tmp_path, env, "task", "pin", task_id[:8], "v1")
    assert pinned.returncode == 0, pinned.stderr
    assert pinned.stdout == f"{task_id}: v1 pinned for scheduled, workflow and MCP runs\n"
    wrong = bot(tmp_path, env, "task", "pin", task_id[:8], "v9")
    assert wrong.returncode != 0 and "has no version 9" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    unpinned = bot(tmp_path, env, "task", "unpin", task_id[:8])
    assert unpinned.stdout == f"{task_id}: unpinned; unattended runs use v2\n"
