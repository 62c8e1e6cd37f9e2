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


def _wait_up(proc: subprocess.Popen[bytes] | subprocess.Popen[str], base: str) -> None:
    """Poll /healthz (with a deadline) until ``serve`` answers; fail if it exits first."""
    deadline = time.monotonic() + 60
    while True:
        try:
            get(f"{base}/healthz")
            return
        except OSError:
            assert proc.poll() is None, "serve exited"
            assert time.monotonic() < deadline, "serve did not come up"
            time.sleep(0.2)


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
        _wait_up(proc, base)
        yield base, mock
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        mock.stop()


def test_serve_answers_health_and_slack(served: tuple[str, MockSlackAPI]) -> None:
    base, mock = served
    status, body = get(f"{base}/healthz")
    assert status == 200 and body == {"ok": True, "database": "ok", "queue": "ok", "slack": "ok"}
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
    done = mock.wait_until(
        lambda calls: [
            text_of(c) for c in calls if c.method == "chat.update" and "succeeded" in text_of(c)
        ],
        timeout=60,
        what="the run shown succeeded",
    )[0]
    assert '"lines": 3' in done
    sender.command("list", response_name="listing")
    assert "count_lines" in text_of(mock.wait_for("response_url", timeout=30)[-1])


def _serve_env(tmp_path: Path, api_url: str, **extra: str) -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": "serve-secret",
        "SLACK_API_URL": api_url,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "PORT": str(free_port()),
        "LOG_LEVEL": "WARNING",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        **extra,
    }


def _serve(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_token_slack_refuses_is_one_line_and_exit_2(tmp_path: Path) -> None:
    mock = MockSlackAPI(bot_token="xoxb-the-real-one").start()
    try:
        result = _serve(_serve_env(tmp_path, mock.api_url), tmp_path)
    finally:
        mock.stop()
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "error: Slack refused SLACK_BOT_TOKEN (invalid_auth): copy the Bot User OAuth Token "
        "(xoxb-...) from OAuth & Permissions again."
    ]
    assert result.stdout == ""


def test_slack_unreachable_in_socket_mode_is_one_line_and_exit_1(tmp_path: Path) -> None:
    env = _serve_env(tmp_path, f"http://127.0.0.1:{free_port()}/api/", SLACK_APP_TOKEN="xapp-1")
    result = _serve(env, tmp_path)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert (
        line.startswith("error: Slack is unreachable at SLACK_API_URL=") and "Socket Mode" in line
    )


def test_a_port_in_use_is_one_line(tmp_path: Path) -> None:
    mock = MockSlackAPI().start()
    with socket.socket() as taken:
        taken.bind(("0.0.0.0", 0))
        taken.listen()
        port = taken.getsockname()[1]
        try:
            result = _serve(_serve_env(tmp_path, mock.api_url, PORT=str(port)), tmp_path)
        finally:
            mock.stop()
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: cannot listen on port {port} (PORT): Address already in use"
    ]


def test_with_slack_unreachable_the_api_and_health_are_served_and_ctrl_c_is_quiet(
    tmp_path: Path,
) -> None:
    import signal

    import psutil

    env = _serve_env(tmp_path, f"http://127.0.0.1:{free_port()}/api/", API_TOKEN="api-secret")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bot", "serve"],
        cwd=tmp_path,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{env['PORT']}"
    try:
        _wait_up(proc, base)
        status, body = get(f"{base}/healthz")
        assert status == 200 and body["ok"] is True and body["database"] == "ok"
        assert str(body["slack"]).startswith("unreachable: Slack is unreachable at SLACK_API_URL=")
        request = urllib.request.Request(
            f"{base}/api/tasks", headers={"Authorization": "Bearer api-secret"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200 and json.loads(response.read()) == {"tasks": []}
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children  # the flow process (and its sandbox zygotes)
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if "slack_bolt.App" not in line]
    assert len(lines) == 1 and lines[0].startswith("warning: Slack is unreachable"), err
    _, alive = psutil.wait_procs(children, timeout=20)
    assert not alive, alive


def _children(pid: int) -> set[int]:
    """The direct children of ``pid`` (from /proc)."""
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def test_an_api_create_runs_its_checks_outside_the_web_process(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    """The web process acks and serves; a version's checks run in the flow process's sandbox,
    so an API create starts no process under the web process."""
    mock = MockSlackAPI().start()
    port = free_port()
    env = {**_serve_env(tmp_path, mock.api_url, API_TOKEN="t0ken"), "PORT": str(port)}
    env["OPENAI_BASE_URL"] = openai_server.base_url
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(proc, base)
        before = _children(proc.pid)
        openai_server.reply_code(COUNT_LINES)
        request = urllib.request.Request(
            f"{base}/api/task/create",
            data=json.dumps({"desired_action": "count the lines"}).encode(),
            headers={"Authorization": "Bearer t0ken", "Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 201
            body = json.loads(response.read())
        assert body["checks"]["total"] > 0 and body["checks"]["passed"] == body["checks"]["total"]
        assert _children(proc.pid) == before  # the flow process (and its helpers) only
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        mock.stop()


NAPS = "import time\n\ndef run(input_path):\n    time.sleep(3)\n    return 'rested'\n"


def _api(base: str, method: str, path: str, body: object = None) -> dict[str, object]:
    request = urllib.request.Request(
        f"{base}{path}",
        data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer t0ken", "Content-Type": "application/json"},
        method=method,
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        answer: dict[str, object] = json.loads(response.read())
        return answer


def _wait_for_a_napping_run(
    base: str, openai_server: FakeOpenAIServer
) -> tuple[dict[str, object], float]:
    """Create a task that naps, run it, and once it is running wait on it with ``?wait=30``:
    the answer and how long the wait took."""
    openai_server.reply_code(NAPS)
    task = _api(base, "POST", "/api/task/create", {"desired_action": "rest a while"})
    accepted = _api(base, "POST", f"/api/task/{task['id']}/run", {"input_text": "x"})
    run_path = accepted["links"]["run"]  # type: ignore[index]
    _until_running(base, run_path)
    asked = time.monotonic()
    waited = _api(base, "GET", f"{run_path}?wait=30")
    return waited, time.monotonic() - asked


def _until_running(base: str, run_path: str) -> None:
    """Poll (with a deadline: a server in another process has no event to offer before the
    end) until the run started; it then naps 3 s, so the wait that follows starts before
    the run ends and only the run's end can answer it early."""
    deadline = time.monotonic() + 60
    while (run := _api(base, "GET", run_path))["status"] != "running":
        assert run["status"] == "queued", run
        assert time.monotonic() < deadline, "the run never started"
        time.sleep(0.1)


def test_an_api_wait_hears_a_run_end_in_the_flow_process(
    tmp_path: Path, openai_server: FakeOpenAIServer
) -> None:
    """The run executes in the flow process's pool; the web process's wait on it wakes on the
    run's event, sent back over the pipe. The database sweep is set to 60 s, longer than the
    30 s wait: without the event the wait reads the run again only when those 30 s run out."""
    mock = MockSlackAPI().start()
    port = free_port()
    env = {
        **_serve_env(tmp_path, mock.api_url, API_TOKEN="t0ken", RUN_WAIT_SWEEP_SECONDS="60"),
        "PORT": str(port),
        "OPENAI_BASE_URL": openai_server.base_url,
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(proc, base)
        waited, took = _wait_for_a_napping_run(base, openai_server)
        assert (waited["final"], waited["status"]) == (True, "succeeded"), waited
        # Woken by the event: the answer came with the run's end (a 3 s nap), not when the
        # wait ran out at 30 s (the sweep, at 60 s, never came).
        assert took < 20, f"the wait answered after {took:.1f} s: it heard no event"
        assert waited["result"] == "rested"
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        mock.stop()


@pytest.mark.postgres
def test_with_celery_an_api_wait_hears_the_worker_over_redis(
    tmp_path: Path, openai_server: FakeOpenAIServer, postgres_url: str, redis_url: str
) -> None:
    """``serve`` with TASK_QUEUE=celery: a Celery worker runs it, and the web process's wait
    hears its end over the Redis relay (sweep at 60 s, as above)."""
    import redis

    from storage import migrate
    from storage.db import make_engine

    redis.Redis.from_url(redis_url).flushdb()
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    engine.dispose()
    mock = MockSlackAPI().start()
    port = free_port()
    env = {
        **_serve_env(tmp_path, mock.api_url, API_TOKEN="t0ken", RUN_WAIT_SWEEP_SECONDS="60"),
        "PORT": str(port),
        "OPENAI_BASE_URL": openai_server.base_url,
        "DATABASE_URL": postgres_url,
        "TASK_QUEUE": "celery",
        "CELERY_BROKER_URL": redis_url,
    }
    serve = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=tmp_path, env=env)
    worker = subprocess.Popen(
        [sys.executable, "-m", "bot", "worker"], cwd=tmp_path, env=env, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_up(serve, base)
        waited, took = _wait_for_a_napping_run(base, openai_server)
        assert (waited["final"], waited["status"]) == (True, "succeeded"), waited
        assert took < 20, f"the wait answered after {took:.1f} s: it heard no event"
    finally:
        for proc in (serve, worker):
            proc.terminate()
        for proc in (serve, worker):
            proc.wait(timeout=30)
        mock.stop()
