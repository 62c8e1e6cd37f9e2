"""``python -m bot serve`` as an operator starts it: a real process, /healthz, and Slack."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.openai_server import COUNT_LINES, FakeOpenAIServer
from tests.fakes.slack_api import MockSlackAPI, text_of
from tests.fakes.slack_requests import SlackSender

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(url: str) -> tuple[int, dict[str, object]]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


@pytest.fixture
def served(tmp_path: Path, openai_server: FakeOpenAIServer) -> Iterator[tuple[str, MockSlackAPI]]:
    mock = MockSlackAPI().start()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "serve-secret",
        "SLACK_API_URL": mock.api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "PORT": str(port),
        "LOG_LEVEL": "WARNING",
        "OPENAI_BASE_URL": openai_server.base_url,
        "OPENAI_MAX_RETRIES": "0",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                get(f"{base}/healthz")
                break
            except OSError:
                assert proc.poll() is None, "serve exited"
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.2)
        yield base, mock
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        mock.stop()


def test_serve_answers_health_and_slack(served: tuple[str, MockSlackAPI]) -> None:
    base, mock = served
    status, body = get(f"{base}/healthz")
    assert status == 200 and body == {"ok": True, "database": "ok", "queue": "ok"}
    status, body = get(f"{base}/nowhere")
    assert status == 404 and body["error"]["code"] == "not_found"
    sender = SlackSender(f"{base}/slack/events", "serve-secret", response_base=mock.base)
    status, text = sender.command("help")
    assert status == 200 and "/task create" in json.loads(text)["text"]
    assert sender.command("help", signature="v0=" + "1" * 64)[0] == 401
    assert mock.of("auth.test")  # the token was checked at start


def test_the_slow_half_runs_in_the_flow_process(
    served: tuple[str, MockSlackAPI], openai_server: FakeOpenAIServer
) -> None:
    base, mock = served
    openai_server.reply_code(COUNT_LINES)
    sender = SlackSender(f"{base}/slack/events", "serve-secret", response_base=mock.base)
    assert sender.command("create count the lines")[0] == 200
    ready = mock.wait_for("chat.update", timeout=60)[-1]
    assert "ready" in text_of(ready)
    root_ts = ready.params["ts"]
    file = mock.host_file("three.txt", b"a\nb\nc\n", "text/plain")
    sender.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U1",
            "text": "",
            "ts": "1800000000.000001",
            "thread_ts": root_ts,
            "files": [file],
        }
    )
    deadline = time.monotonic() + 60
    while not any("succeeded" in text_of(c) for c in mock.of("chat.update")):
        assert time.monotonic() < deadline, [text_of(c) for c in mock.of("chat.update")]
        time.sleep(0.1)
    done = next(text_of(c) for c in mock.of("chat.update") if "succeeded" in text_of(c))
    assert '"lines": 3' in done
    sender.command("list", response_name="listing")
    assert "count_lines" in text_of(mock.wait_for("response_url", timeout=30)[-1])
