"""What a newcomer meets in the first hour, as they meet it: real processes, a fake model.

``./scripts/run.sh`` from another folder, Ctrl-C in the middle of a create, progress while the
model thinks, a missing API key, ``config``, ``list``/``show``/``export``/``delete``.
"""

from __future__ import annotations

import io
import os
import pty
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dotenv import dotenv_values

from bot.env_files import SETTINGS
from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer, answer_json

ROOT = Path(__file__).resolve().parents[2]
RUN_SH = ROOT / "scripts" / "run.sh"
V2 = COUNT_LINES.replace("sum(1 for _ in f)", "sum(1 for line in f if line.strip())")


@pytest.fixture
def env(tmp_path: Path, openai_server: FakeOpenAIServer) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(tmp_path),
        "PYTHONPATH": str(ROOT),
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_API_KEY": "sk-test",
        "OPENAI_MAX_RETRIES": "0",
        "OPENAI_TIMEOUT": "30",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'first.db'}",
        "LOG_LEVEL": "WARNING",
    }


def bot(
    cwd: Path, env: dict[str, str], *args: str, stdin: int | None = subprocess.DEVNULL
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        cwd=cwd,
        env=env,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def created(cwd: Path, env: dict[str, str], server: FakeOpenAIServer, code: str) -> str:
    server.reply_code(code)
    result = bot(cwd, env, "task", "create", "count the lines of the input file")
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()[0]


def wait_until(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def no_traceback(text: str) -> None:
    assert "Traceback" not in text and "Error:" not in text.replace("error:", ""), text


def test_run_sh_keeps_the_users_folder_and_hints_name_it(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    work = tmp_path / "elsewhere"
    work.mkdir()
    typed = os.path.relpath(RUN_SH, work)  # as a person types it from their own folder

    def run_sh(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [typed, *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )

    empty = run_sh("task", "list")
    assert empty.returncode == 0, empty.stderr
    assert f'Create one: {typed} task create "..."' in empty.stdout
    openai_server.reply_code(COUNT_LINES)
    task_id = run_sh("task", "create", "count the lines").stdout.splitlines()[0]
    (work / "notes.txt").write_text("one\ntwo\nthree\n")
    ran = run_sh("task", "run", task_id[:8], "--input", "notes.txt")
    assert ran.returncode == 0, ran.stderr
    assert '"lines": 3' in ran.stdout
    exported = run_sh("task", "export", task_id[:8], "--dir", "myexport")
    assert exported.returncode == 0, exported.stderr
    assert (work / "myexport" / task_id / "function.py").read_text() == COUNT_LINES
    assert not (ROOT / "myexport").exists()
    helped = run_sh("--help")
    assert helped.stdout.startswith(f"usage: {typed} ")


def test_ctrl_c_during_create_is_quiet_and_the_task_ends_failed(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.stall(60)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "task", "create", "count the lines"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_until(lambda: openai_server.requests, 60, "the model was never asked")
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the whole foreground group
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert out == "" and err.strip() == "interrupted", err
    listed = bot(tmp_path, env, "task", "list")
    row = listed.stdout.splitlines()[1]
    assert " failed " in row and " generating " not in row
    shown = bot(tmp_path, env, "task", "show", row.split()[0])
    assert shown.returncode == 1
    assert "interrupted before the code was written" in shown.stderr
    no_traceback(shown.stderr)


def test_progress_goes_to_stderr_only_on_a_terminal_or_when_asked(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    openai_server.stall(1.2, answer_json(code=COUNT_LINES))
    asked = bot(tmp_path, env, "task", "create", "--progress", "count the lines")
    assert asked.returncode == 0, asked.stderr
    assert re.search(r"writing the code for task \w{8} \(.+\)… \d+ s\n", asked.stderr)
    assert "writing the code" not in asked.stdout
    task_id = asked.stdout.splitlines()[0]

    openai_server.stall(1.2, answer_json(code=COUNT_LINES))
    quiet = bot(tmp_path, env, "task", "create", "count the lines")
    assert quiet.returncode == 0 and "writing the code" not in quiet.stderr

    ran = bot(tmp_path, env, "task", "run", task_id, "--text", "a\nb", "--progress")
    assert re.search(r"run \w{8}: \w+… \d+ s\n", ran.stderr), ran.stderr
    assert ran.stdout.strip().startswith("{")

    # On a terminal: one line rewritten in place, erased at the end.
    openai_server.stall(1.5, answer_json(code=COUNT_LINES))
    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "task", "create", "count the lines"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
    )
    os.close(slave)
    seen = io.BytesIO()
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        seen.write(chunk)
    proc.wait(timeout=60)
    os.close(master)
    assert proc.stdout is not None
    assert proc.stdout.read().decode().count("def run") == 1
    terminal = seen.getvalue().decode()
    assert "\rwriting the code for task" in terminal and terminal.endswith("\r")


def test_a_missing_api_key_is_named(tmp_path: Path, env: dict[str, str]) -> None:
    no_key = {k: v for k, v in env.items() if k != "OPENAI_API_KEY"}
    no_key["OPENAI_BASE_URL"] = "http://127.0.0.1:9/v1"  # nothing listens there
    result = bot(tmp_path, no_key, "task", "create", "count the lines")
    assert result.returncode == 1
    assert result.stderr.startswith("error: OPENAI_API_KEY is not set")
    assert len(result.stderr.strip().splitlines()) == 1
    row = bot(tmp_path, no_key, "task", "list").stdout.splitlines()[1]
    assert " failed " in row

    bare = {"PATH": env["PATH"], "PYTHONPATH": env["PYTHONPATH"], "HOME": env["HOME"]}
    served = bot(tmp_path, {**bare, "DATABASE_URL": env["DATABASE_URL"]}, "serve")
    assert served.returncode == 2
    assert "  - OPENAI_API_KEY: the model server's API key" in served.stderr
    assert "  - SLACK_BOT_TOKEN" in served.stderr


def test_config_prints_every_setting_redacted_as_env_lines(
    tmp_path: Path, env: dict[str, str]
) -> None:
    secret_env = {
        **env,
        "DATABASE_URL": "postgresql://bob:hunter2@db.example:5432/taskbot",
        "CELERY_BROKER_URL": "redis://:s3cret@redis.example:6379/0",
        "SLACK_SIGNING_SECRET": "sign-me",
    }
    result = bot(tmp_path, secret_env, "config")
    assert result.returncode == 0, result.stderr
    for secret in ("hunter2", "s3cret", "sign-me", "sk-test"):
        assert secret not in result.stdout
    values = dotenv_values(stream=io.StringIO(result.stdout))
    assert set(values) == {s.name for s in SETTINGS}
    assert values["DATABASE_URL"] == "postgresql://bob:***@db.example:5432/taskbot"
    assert values["CELERY_BROKER_URL"] == "redis://:***@redis.example:6379/0"
    assert "OPENAI_API_KEY=  # set (hidden)" in result.stdout
    assert "SLACK_BOT_TOKEN=  # not set" in result.stdout

    elsewhere = {k: v for k, v in env.items() if k != "DATABASE_URL"}
    default = bot(tmp_path, elsewhere, "config")
    assert f"DATABASE_URL=sqlite:///{ROOT / 'taskbot.db'}\n" in default.stdout


def test_list_show_export_and_limits_speak_plainly(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    task_id = created(tmp_path, env, openai_server, COUNT_LINES)
    listed = bot(tmp_path, env, "task", "list").stdout.splitlines()
    assert listed[0].split() == ["ID", "VER", "STATE", "LAST", "RUN", "CREATED", "(UTC)", "NAME"]
    assert re.search(r" \d{4}-\d\d-\d\d \d\d:\d\d ", listed[1]), listed[1]
    shown = bot(tmp_path, env, "task", "show", task_id[:8])
    assert "# asked: count the lines of the input file\n" in shown.stdout

    assert bot(tmp_path, env, "task", "export", task_id[:8]).returncode == 0
    openai_server.reply_code(V2)
    assert bot(tmp_path, env, "task", "refine", task_id[:8], "skip empty lines").returncode == 0
    again = bot(tmp_path, env, "task", "export", task_id[:8])
    assert again.returncode == 1 and "--force" in again.stderr
    exported = tmp_path / "user_tasks" / task_id / "function.py"
    assert exported.read_text() == COUNT_LINES  # v1 is kept
    forced = bot(tmp_path, env, "task", "export", task_id[:8], "--force")
    assert forced.returncode == 0 and exported.read_text() == V2
    v2_shown = bot(tmp_path, env, "task", "show", task_id[:8]).stdout
    assert "# v2 asked: skip empty lines\n" in v2_shown

    (tmp_path / "big.txt").write_bytes(b"x" * 2048)
    small = {**env, "SANDBOX_MAX_INPUT_MB": "0"}
    too_big = bot(tmp_path, small, "task", "run", task_id[:8], "--input", "big.txt")
    assert too_big.returncode == 1 and "(SANDBOX_MAX_INPUT_MB)" in too_big.stderr
    needs = bot(tmp_path, env, "task", "run", task_id[:8])
    assert "needs an input file" in needs.stderr and "thread" not in needs.stderr


def test_delete_asks_first_on_a_terminal_and_wants_yes_elsewhere(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    task_id = created(tmp_path, env, openai_server, COUNT_LINES)
    no_tty = bot(tmp_path, env, "task", "delete", task_id[:8])
    assert no_tty.returncode == 2 and "add --yes" in no_tty.stderr

    def answered(answer: str) -> subprocess.CompletedProcess[str]:
        master, slave = pty.openpty()
        os.write(master, answer.encode() + b"\n")
        try:
            return bot(tmp_path, env, "task", "delete", task_id[:8], stdin=slave)
        finally:
            os.close(slave)
            os.close(master)

    kept = answered("n")
    assert kept.returncode == 1 and "Delete task" in kept.stderr and "not deleted" in kept.stderr
    assert task_id in bot(tmp_path, env, "task", "list").stdout
    gone = answered("y")
    assert gone.returncode == 0 and gone.stdout == f"deleted {task_id}\n"
    assert task_id not in bot(tmp_path, env, "task", "list").stdout

    other = created(tmp_path, env, openai_server, COUNT_LINES)
    assert bot(tmp_path, env, "task", "delete", other, "--yes").returncode == 0
    missing = bot(tmp_path, env, "task", "show", other)
    assert missing.returncode == 1 and "No task" in missing.stderr


SLEEPY = "import time\n\n\ndef run(input_path):\n    time.sleep(60)\n    return 1\n"


def test_ctrl_c_during_run_is_quiet_and_the_run_ends_failed(
    tmp_path: Path, env: dict[str, str], openai_server: FakeOpenAIServer
) -> None:
    from sqlalchemy import create_engine, text

    task_id = created(tmp_path, env, openai_server, SLEEPY)
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "task", "run", task_id, "--text", "x"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    engine = create_engine(env["DATABASE_URL"])

    def status() -> str | None:
        with engine.connect() as conn:
            return conn.execute(text("SELECT status FROM runs")).scalar()

    try:
        wait_until(lambda: status() == "running", 60, "the run never started")
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and out == "" and err.strip() == "interrupted", err
    with engine.connect() as conn:
        row = conn.execute(text("SELECT status, error_type FROM runs")).one()
    engine.dispose()
    assert tuple(row) == ("failed", "Interrupted")
