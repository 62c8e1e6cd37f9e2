"""What a request may cost before it is authenticated, through the real server (uvicorn,
the whole web app): oversized and unsigned bodies are answered 413/401 without being read,
chunked ones as soon as they pass the limit; never a 500."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlparse

import pytest

from bot.slow_clients import GuardedHttpTools
from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import COUNT_CHARS
from tests.fakes.openai_server import answer_json

MiB = 2**20
TOKEN = "api-secret"


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One server for the module: each refusal closes its own connection only."""
    built = make_stack(tmp_path_factory.mktemp("edge"), api_token=TOKEN, sandbox_max_input_mb=1)
    try:
        yield built
    finally:
        close_stack(built)


def _connect(stack: Stack) -> socket.socket:
    url = urlparse(stack.http.url)
    sock = socket.create_connection((url.hostname, url.port), timeout=10)
    return sock


def _head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", "Host: taskbot", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the response (read until the server closes)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def _slack_headers(**extra: str) -> dict[str, str]:
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(int(time.time())),
        "X-Slack-Signature": "v0=" + "0" * 64,
        **extra,
    }


def test_an_unsigned_256_mib_post_is_401_before_its_body(edge: Stack) -> None:
    with _connect(edge) as sock:
        sock.sendall(_head("/slack/events", {"Content-Length": str(256 * MiB)}))
        status, body = _answer(sock)  # nothing of the body was sent: answered on the headers
    assert status == 401
    assert body["error"] == {
        "code": "unauthorized",
        "message": "The request is not signed by Slack.",
    }


def test_a_stale_slack_timestamp_is_401_before_its_body(edge: Stack) -> None:
    stale = _slack_headers()
    stale["X-Slack-Request-Timestamp"] = str(int(time.time()) - 3600)
    with _connect(edge) as sock:
        sock.sendall(_head("/slack/events", {**stale, "Content-Length": str(MiB)}))
        status, _ = _answer(sock)
    assert status == 401


def test_a_signed_looking_256_mib_post_is_413_before_its_body(edge: Stack) -> None:
    with _connect(edge) as sock:
        sock.sendall(_head("/slack/events", _slack_headers(**{"Content-Length": str(256 * MiB)})))
        status, body = _answer(sock)
    assert status == 413
    assert "over the limit" in str(body["error"])


def test_a_chunked_slack_body_is_cut_off_at_the_limit(edge: Stack) -> None:
    chunk = b"a" * 65536
    sent = 0
    with _connect(edge) as sock:
        sock.sendall(_head("/slack/events", _slack_headers(**{"Transfer-Encoding": "chunked"})))
        try:
            while sent < 64 * MiB:  # far past the limit: the server answers long before
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                sent += len(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
        status, _ = _answer(sock)
    assert status == 413
    assert sent < 64 * MiB


def test_an_api_post_without_the_token_is_401_before_its_body(edge: Stack) -> None:
    with _connect(edge) as sock:
        sock.sendall(_head("/api/task/create", {"Content-Length": str(256 * MiB)}))
        status, body = _answer(sock)
    assert status == 401
    assert body["error"]["code"] == "unauthorized"  # type: ignore[index]


def test_an_api_body_over_its_input_limit_is_413(edge: Stack) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    with _connect(edge) as sock:
        sock.sendall(_head("/api/task/create", {**auth, "Content-Length": str(2 * MiB)}))
        status, _ = _answer(sock)
    assert status == 413


def test_requests_within_the_limits_still_work(edge: Stack) -> None:
    edge.model.queue(answer_json(code=COUNT_CHARS))
    status, _ = edge.slack.command("help")
    assert status == 200
    request = urllib.request.Request(
        f"{edge.http.url}/api/task/create",
        data=json.dumps({"desired_action": "count the characters"}).encode(),
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201)


@pytest.fixture
def short_deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(GuardedHttpTools, "header_seconds", 0.5)
    monkeypatch.setattr(GuardedHttpTools, "body_idle_seconds", 0.5)


def _closed_by_server(sock: socket.socket) -> bytes:
    """Everything the server sent until it closed the connection (a 10 s socket timeout if
    it never does)."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


@pytest.mark.usefixtures("short_deadlines")
def test_slow_headers_and_stalled_bodies_lose_their_connection(edge: Stack) -> None:
    silent = _connect(edge)
    trickling = _connect(edge)
    trickling.sendall(b"POST /slack/events HTTP/1.1\r\nHost: t")
    stalled = _connect(edge)
    stalled.sendall(_head("/slack/events", _slack_headers(**{"Content-Length": "100"})) + b"x")
    # Slack's requests are still acked while these hold their connections.
    status, _ = edge.slack.command("help")
    assert status == 200
    with silent, trickling, stalled:
        assert _closed_by_server(silent).startswith(b"HTTP/1.1 408 ")
        assert _closed_by_server(trickling).startswith(b"HTTP/1.1 408 ")
        assert _closed_by_server(stalled) == b""  # mid-body: closed, nothing half-answered
