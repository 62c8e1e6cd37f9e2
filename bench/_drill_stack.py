"""The scaled-out stack bench/drill.py runs against, all on loopback, and the means to hurt it.

Starts: a fresh PostgreSQL database (migrated with ``python -m bot migrate``), a flushed Redis
db index, the fakes (mock Slack Web API + a model that always answers valid code; one helper
process, bench/_processes.py), two ``python -m bot serve`` and two ``python -m bot worker``.
Every child gets its own process group, so ``stop`` ends it and whatever it forked.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlparse

import psycopg

from tests.servers import PrivatePostgres, PrivateRedis

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
SECRET = "drill-secret"
# What the fake model answers to every create: echo the input after ~0.2 s, and write it to an
# output file too (so a run recorded twice would show as duplicate run_files).
ECHO_CODE = (
    "import os\n"
    "import time\n\n\n"
    "def run(input_path):\n"
    "    with open(input_path, encoding='utf-8') as f:\n"
    "        text = f.read()\n"
    "    time.sleep(0.2)\n"
    "    os.makedirs('output', exist_ok=True)\n"
    "    with open('output/echo.txt', 'w', encoding='utf-8') as f:\n"
    "        f.write(text)\n"
    "    return {'echo': text}\n"
)


# --- waiting ------------------------------------------------------------------------------


def wait_for(predicate: Any, timeout: float, what: str, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} within {timeout:.0f} s")
        time.sleep(every)


# --- processes ----------------------------------------------------------------------------


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen[bytes]
    pgid: int


@dataclass
class Stack:
    """The drill's own PostgreSQL and Redis (private servers it starts, stops, restarts and
    removes: never the machine's) and the Taskbot processes on them."""

    tmp: Path
    pg: PrivatePostgres = field(default_factory=lambda: PrivatePostgres(prefix="taskbot-drill-pg-"))
    redis: PrivateRedis = field(default_factory=lambda: PrivateRedis(prefix="taskbot-drill-redis-"))
    redis_db: int = 12
    db_name: str = field(default_factory=lambda: f"taskbot_drill_{secrets.token_hex(4)}")
    procs: list[Proc] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    web_urls: list[str] = field(default_factory=list)
    web: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    mock_base: str = ""
    db_created: bool = False

    @property
    def db_url(self) -> str:
        return self.pg.libpq_url(self.db_name)

    @property
    def broker_url(self) -> str:
        return self.redis.url(self.redis_db)

    # --- start ---

    def start(self, *, lifetime: float) -> None:
        self.pg.start()
        self.redis.start()
        with psycopg.connect(self.pg.libpq_url("postgres"), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        code = self.tmp / "echo.py"
        code.write_text(ECHO_CODE)
        fakes = self._spawn(
            "fakes",
            [sys.executable, str(HERE / "_processes.py"), "drill-fakes", str(code), str(lifetime)],
            env={"PATH": os.environ.get("PATH", ""), "PYTHONPATH": str(ROOT)},
            stdout=subprocess.PIPE,
        )
        assert fakes.popen.stdout is not None
        api_url, model_url, self.mock_base = fakes.popen.stdout.readline().decode().split()
        self.env = {
            "PATH": os.environ.get("PATH", ""),
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": "xoxb-test",
            "SLACK_SIGNING_SECRET": SECRET,
            "SLACK_API_URL": api_url,
            "OPENAI_API_KEY": "drill",
            "OPENAI_BASE_URL": model_url,
            "OPENAI_TIMEOUT": "30",
            "DATABASE_URL": self.db_url,
            "TASK_QUEUE": "celery",
            "CELERY_BROKER_URL": self.broker_url,
            "WORKER_CONCURRENCY": "2",
            "SANDBOX_WALL_SECONDS": "10",
            "SANDBOX_CPU_SECONDS": "10",
            # Shorter than the defaults (15 s, stale_after / 2 = 35 s) so the drill is brief.
            "TASKBOT_SWEEP_SECONDS": "5",
            "TASKBOT_REQUEUE_AFTER_SECONDS": "20",
            # The drill is one user's load (it measures recovery, not fair shares): no limits
            # per user or channel, or most of its creates and runs would be answered "busy".
            "FAIR_USER_GENERATIONS": "0",
            "FAIR_CHANNEL_GENERATIONS": "0",
            "FAIR_USER_QUEUED_RUNS": "0",
            "FAIR_CHANNEL_QUEUED_RUNS": "0",
            "LOG_LEVEL": "WARNING",
        }
        subprocess.run(
            [sys.executable, "-m", "bot", "migrate"],
            cwd=ROOT,
            env=self.env,
            check=True,
            capture_output=True,
            timeout=120,
        )
        for i in range(2):
            port = free_port()
            self.web.append(self._spawn(f"web{i}", self._argv("serve"), env={"PORT": str(port)}))
            self.web_urls.append(f"http://127.0.0.1:{port}")
        for i in range(2):
            self.workers.append(self.start_worker(i))
        for url in self.web_urls:
            wait_for(lambda u=url: healthy(u), 90, f"{url}/healthz answering 200", every=0.3)

    def _argv(self, command: str) -> list[str]:
        return [sys.executable, "-m", "bot", command]

    def start_worker(self, i: int) -> Proc:
        return self._spawn(f"worker{i}", self._argv("worker"), env={"LOG_LEVEL": "INFO"})

    def restart_worker(self, i: int) -> Proc:
        self.workers[i] = self.start_worker(i)
        return self.workers[i]

    def _spawn(
        self, name: str, argv: list[str], *, env: dict[str, str], stdout: Any = None
    ) -> Proc:
        log = (self.tmp / f"{name}.log").open("ab")
        popen = subprocess.Popen(
            argv,
            cwd=ROOT,
            env={**self.env, **env},
            stdout=stdout if stdout is not None else log,
            stderr=log,
            start_new_session=True,  # its own process group: stop() ends it and its children
        )
        log.close()
        proc = Proc(name, popen, popen.pid)
        self.procs.append(proc)
        return proc

    # --- faults ---

    def kill9(self, proc: Proc) -> None:
        """What a crash does: SIGKILL to the process only (its sandbox children see it die)."""
        os.kill(proc.popen.pid, signal.SIGKILL)
        proc.popen.wait(timeout=10)

    # --- stop ---

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pgid, signal.SIGTERM)
        deadline = time.monotonic() + 15
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for proc in self.procs:  # whatever is left in the groups we made, by group id
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pgid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.popen.wait(timeout=5)

    def drop(self) -> None:
        """Stop and remove the private servers (their data goes with them)."""
        self.db_created = False
        self.pg.close()
        self.redis.close()

    # --- looking in ---

    def sql(self, query: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.db_url, connect_timeout=5) as conn:
            return list(conn.execute(query, args).fetchall())

    def calls(self, method: str | None = None, since: int = 0) -> list[dict[str, Any]]:
        query = {"since": str(since), **({"method": method} if method else {})}
        with urllib.request.urlopen(f"{self.mock_base}/_calls?{urlencode(query)}", timeout=60) as r:
            return list(json.loads(r.read()))

    def last_seq(self) -> int:
        """How many calls the mock has recorded (``calls(since=...)`` starts after them)."""
        with urllib.request.urlopen(f"{self.mock_base}/_calls?count=1", timeout=30) as r:
            return int(json.loads(r.read())["count"])

    def rate_limit(self, methods: list[str], seconds: float) -> None:
        body = json.dumps({"methods": methods, "seconds": seconds}).encode()
        request = urllib.request.Request(
            f"{self.mock_base}/_rate_limit",
            data=body,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10):
            pass


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def healthy(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
            return r.status == 200
    except (urllib.error.URLError, OSError):
        return False


# --- signed commands, timed from the client like bench/bench_ack.py ------------------------

_lock = threading.Lock()
_counter = iter(range(10**9))


@dataclass
class Command:
    url: str  # the web process's base URL
    text: str
    user: str = "U1"
    response: str = ""  # the response_url's name at the mock (default: a fresh one)
    latency: float = -1.0
    status: int = 0
    error: str = ""

    @property
    def acked(self) -> bool:
        return self.status == 200 and 0 <= self.latency < 3.0


class Client:
    """One keep-alive connection that sends signed ``/task`` commands and times each ack."""

    def __init__(self, base: str, mock_base: str) -> None:
        from slack_sdk.signature import SignatureVerifier

        parsed = urlparse(base)
        self.host, self.port = parsed.hostname or "127.0.0.1", parsed.port or 80
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        self.mock_base = mock_base
        self.signer = SignatureVerifier(SECRET)

    def send(self, command: Command) -> None:
        with _lock:
            n = next(_counter)
        body = urlencode(
            {
                "token": "legacy",
                "command": "/task",
                "text": command.text,
                "team_id": "T1",
                "team_domain": "drill",
                "channel_id": "C1",
                "channel_name": "general",
                "user_id": command.user,
                "user_name": "drill",
                "api_app_id": "A1",
                "trigger_id": f"drill.{os.getpid()}.{n}",
                "response_url": f"{self.mock_base}/response/{command.response or f'r{n}'}",
            }
        )
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "X-Slack-Request-Timestamp": ts,
            "X-Slack-Signature": self.signer.generate_signature(timestamp=ts, body=body),
        }
        start = time.perf_counter()
        try:
            self.conn.request("POST", "/slack/events", body=body, headers=headers)
            response = self.conn.getresponse()
            response.read()
            command.status = response.status
        except (OSError, http.client.HTTPException) as exc:
            command.error = repr(exc)
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=30)
        command.latency = time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


def send_all(commands: list[Command], mock_base: str, *, connections: int) -> None:
    """Send every command at once from ``connections`` keep-alive connections (spread over the
    commands' web processes), each connection sending its share back to back."""
    by_url: dict[str, list[Command]] = {}
    for command in commands:
        by_url.setdefault(command.url, []).append(command)
    lanes: list[tuple[str, list[Command]]] = []
    per_url = max(1, connections // max(1, len(by_url)))
    for url, mine in by_url.items():
        for k in range(min(per_url, len(mine))):
            lanes.append((url, mine[k::per_url]))
    barrier = threading.Barrier(len(lanes))

    def lane(url: str, share: list[Command]) -> None:
        client = Client(url, mock_base)
        try:
            barrier.wait(timeout=60)
            for command in share:
                client.send(command)
        finally:
            client.close()

    threads = [threading.Thread(target=lane, args=lane_args, daemon=True) for lane_args in lanes]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)


def spread(stack: Stack, texts: list[str], **kwargs: Any) -> list[Command]:
    """Commands alternating between the web processes (what a load balancer does)."""
    urls = stack.web_urls
    return [Command(urls[i % len(urls)], text, **kwargs) for i, text in enumerate(texts)]


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    box = {"start": time.monotonic(), "seconds": 0.0}
    try:
        yield box
    finally:
        box["seconds"] = time.monotonic() - box["start"]
