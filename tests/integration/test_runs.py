"""One run-lifecycle suite, on the in-process pool and on a real Celery worker over Redis."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.errors import InvalidInput
from bot.services.runs import RunView
from bot.worker.celery_app import CeleryQueue
from storage import migrate
from storage.db import make_engine
from storage.kinds import RunStatus
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

ROOT = Path(__file__).resolve().parents[2]

CSV_ROWS = (
    "import csv\n\ndef run(input_path):\n"
    "    with open(input_path, newline='') as f:\n"
    "        return [dict(r) for r in csv.DictReader(f)]\n"
)
GENERATOR = (
    "def run(input_path):\n    assert input_path is None\n    return 'hello from a generator'\n"
)
BROKEN = "def run(input_path):\n    data = {}\n    return data['missing']\n"
SLEEPY = "import time\n\ndef run(input_path):\n    time.sleep(30)\n    return 1\n"
WRITES = (
    "import os\n\ndef run(input_path):\n    os.makedirs('output', exist_ok=True)\n"
    "    with open('output/report.txt', 'w') as f:\n        f.write('done')\n    return None\n"
)
PRINTS = "import sys\n\ndef run(input_path):\n    print('to stdout')\n    print('to stderr', file=sys.stderr)\n    return b'\\x00\\x01'\n"


@dataclass
class Harness:
    services: Services
    wait: Callable[[str], RunView]
    kind: str
    restart: Callable[[], None]
    kill: Callable[[], None]

    def task(self, code: str, *, task_type: str = "passthrough") -> str:
        model = self.services.generator
        assert isinstance(model, FakeCodeGenerator)
        model.queue(answer_json(code=code))
        detail = self.services.tasks.create(
            description="test task", task_type=task_type, requested_by="U1", source="cli"
        )
        return detail.task.id


def _settings(db_url: str, broker_url: str = "redis://127.0.0.1:1/0", **extra: object) -> Settings:
    return Settings(
        database_url=db_url,
        sandbox_wall_seconds=3,
        sandbox_cpu_seconds=3,
        worker_concurrency=2,
        celery_broker_url=broker_url,
        **extra,  # type: ignore[arg-type]
    )


def _waiter(services: Services, timeout: float = 45) -> Callable[[str], RunView]:
    """Waits on the run's own events (in process; from a Celery worker over Redis)."""

    def wait(run_id: str) -> RunView:
        view = services.runs.wait(run_id, timeout=timeout)
        assert view.final, f"run {run_id} did not finish: {view.status}"
        return view

    return wait


@pytest.fixture
def local(sqlite_url: str) -> Iterator[Harness]:
    engine = make_engine(sqlite_url)
    migrate.upgrade(engine)
    holder: dict[str, Services] = {}

    def start() -> None:
        holder["s"] = build_services(
            _settings(sqlite_url), engine=engine, generator=FakeCodeGenerator(), runner="local"
        )

    start()
    harness = Harness(holder["s"], _waiter(holder["s"]), "local", lambda: None, lambda: None)
    yield harness
    holder["s"].close()


class CeleryWorker:
    def __init__(self, db_url: str, broker_url: str, log: Path) -> None:
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": db_url,
            "TASK_QUEUE": "celery",
            "CELERY_BROKER_URL": broker_url,
            "SANDBOX_WALL_SECONDS": "3",
            "SANDBOX_CPU_SECONDS": "3",
            "WORKER_CONCURRENCY": "2",
            "LOG_LEVEL": "INFO",
        }
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "bot", "worker"],
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def kill(self) -> None:
        """kill -9 of the worker and its Celery child at once, as a crashed host does. (Killing
        only the supervisor left the child alive for a moment, long enough to take the next
        message from Redis and die holding it, unacknowledged until the sweeper re-sends it.)"""
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def celery(postgres_url: str, redis_url: str, tmp_path: Path) -> Iterator[Harness]:
    redis.Redis.from_url(redis_url).flushdb()
    engine = make_engine(postgres_url)
    migrate.upgrade(engine)
    services = build_services(
        _settings(postgres_url, redis_url),
        engine=engine,
        generator=FakeCodeGenerator(),
        runner="celery",
    )
    worker = CeleryWorker(postgres_url, redis_url, tmp_path / "worker.log")
    worker.start()

    def restart() -> None:
        worker.stop()
        worker.start()

    try:
        yield Harness(services, _waiter(services), "celery", restart, worker.kill)
    finally:
        worker.stop()
        services.close()
        if os.environ.get("SHOW_WORKER_LOG"):
            print((tmp_path / "worker.log").read_text())


@pytest.fixture(params=["local", pytest.param("celery", marks=pytest.mark.postgres)])
def harness(request: pytest.FixtureRequest) -> Harness:
    return request.getfixturevalue(request.param)  # type: ignore[no-any-return]


def test_a_run_is_recorded_queued_then_succeeds_with_its_result(harness: Harness) -> None:
    task_id = harness.task(CSV_ROWS)
    data = b"name,country\nada,UK\nlin,CN\n"
    queued = harness.services.runs.request(
        task_id, requested_by="U1", input_data=data, input_name="../../people.csv"
    )
    assert queued.status in ("queued", "running", "succeeded")
    assert queued.input_name == "people.csv"
    assert queued.input_size == len(data)
    assert queued.input_sha256 == hashlib.sha256(data).hexdigest()
    done = harness.wait(queued.id)
    assert done.status == "succeeded", (done.error_type, done.error_message)
    assert done.result_kind == "json"
    assert json.loads(done.result or b"") == [
        {"name": "ada", "country": "UK"},
        {"name": "lin", "country": "CN"},
    ]
    assert done.started_at is not None and done.finished_at is not None
    assert done.queued_at <= done.started_at <= done.finished_at
    assert done.duration_seconds is not None and done.duration_seconds > 0
    assert done.attempts == 1


def test_generator_text_result(harness: Harness) -> None:
    task_id = harness.task(GENERATOR, task_type="generator")
    done = harness.wait(harness.services.runs.request(task_id, requested_by="U1").id)
    assert done.status == "succeeded", done.error_message
    assert (done.result_kind, done.result) == ("text", b"hello from a generator")


def test_failure_keeps_type_message_and_traceback(harness: Harness) -> None:
    task_id = harness.task(BROKEN)
    done = harness.wait(
        harness.services.runs.request(task_id, requested_by="U1", input_data=b"x").id
    )
    assert done.status == "failed"
    assert done.error_type == "KeyError" and "missing" in (done.error_message or "")
    assert "data['missing']" in (done.traceback_tail or "")


def test_timeout(harness: Harness) -> None:
    task_id = harness.task(SLEEPY)
    done = harness.wait(
        harness.services.runs.request(task_id, requested_by="U1", input_data=b"x").id
    )
    assert done.status == "timed_out"
    assert done.duration_seconds is not None and 2.5 < done.duration_seconds < 10


def test_output_files_and_streams(harness: Harness) -> None:
    task_id = harness.task(WRITES)
    done = harness.wait(
        harness.services.runs.request(task_id, requested_by="U1", input_data=b"x").id
    )
    assert done.status == "succeeded", done.error_message
    assert [(f.name, f.content) for f in done.files] == [("report.txt", b"done")]
    task_id = harness.task(PRINTS)
    done = harness.wait(
        harness.services.runs.request(task_id, requested_by="U1", input_data=b"x").id
    )
    assert (done.result_kind, done.result) == ("bytes", b"\x00\x01")
    assert done.stdout == "to stdout\n" and done.stderr == "to stderr\n"


def test_submitting_a_run_twice_executes_it_once(harness: Harness) -> None:
    task_id = harness.task(CSV_ROWS)
    view = harness.services.runs.request(task_id, requested_by="U1", input_data=b"a\n1\n")
    queue = harness.services.runs.queue
    assert queue is not None
    queue.submit(view.id)
    queue.submit(view.id)
    done = harness.wait(view.id)
    if harness.services.pool is not None:
        assert harness.services.pool.wait_idle(timeout=30)  # both deliveries were taken
    else:
        _broker_drained(harness)  # Celery: every delivery taken and acknowledged
    again = harness.services.runs.get(view.id)
    assert done.status == again.status == "succeeded"
    assert again.attempts == 1 and again.finished_at == done.finished_at


def _broker_drained(harness: Harness, timeout: float = 30) -> None:
    """Until the broker holds no message (none waiting, none delivered and unacknowledged: a
    worker acknowledges a message once it has handled it), woken early by any run's event."""
    queue = harness.services.runs.queue
    assert isinstance(queue, CeleryQueue)
    deadline = time.monotonic() + timeout
    signal = harness.services.signal
    while True:
        seen = signal.count
        held = queue.held()
        assert held is not None, "the broker cannot say what it holds"
        if not held:
            return
        assert time.monotonic() < deadline, f"the broker still holds {held}"
        signal.wait_after(seen, 0.1)


def test_bad_requests_are_refused_before_queueing(harness: Harness) -> None:
    passthrough = harness.task(CSV_ROWS)
    generator = harness.task(GENERATOR, task_type="generator")
    runs = harness.services.runs
    with pytest.raises(InvalidInput, match="needs an input file"):
        runs.request(passthrough, requested_by="U1")
    with pytest.raises(InvalidInput, match="takes no input file"):
        runs.request(generator, requested_by="U1", input_data=b"x")
    with pytest.raises(InvalidInput, match="too large"):
        runs.request(passthrough, requested_by="U1", input_data=b"x" * (20 * 2**20 + 1))
    assert runs.queued_ids() == []


def test_queued_runs_survive_a_restart_and_dead_runs_are_failed(harness: Harness) -> None:
    task_id = harness.task(CSV_ROWS)
    runs = harness.services.runs
    if harness.kind == "local":
        waiting = runs.request(task_id, requested_by="U1", input_data=b"a\n1\n", submit=False)
        stuck = runs.request(task_id, requested_by="U1", input_data=b"a\n1\n", submit=False)
        assert runs.start(stuck.id, worker=f"{socket.gethostname()}:{os.getpid()}:1") is not None
        pool = harness.services.pool
        assert pool is not None
        failed, resubmitted = pool.recover(runs)
        assert failed == [stuck.id] and resubmitted == [waiting.id]
    else:
        sleepy = harness.task(SLEEPY)
        stuck = runs.request(sleepy, requested_by="U1", input_data=b"x")
        _until_running(harness, stuck.id)  # the worker's claim, heard over Redis
        harness.kill()  # kill -9 mid-run
        waiting = runs.request(task_id, requested_by="U1", input_data=b"a\n1\n")
        harness.restart()
    assert harness.wait(waiting.id).status == "succeeded"
    lost = harness.wait(stuck.id)
    assert lost.status == "failed" and lost.error_type == "WorkerLost"
    assert lost.attempts == 1


# --- stopping: the request reaches whichever worker holds the run ---------------------------


def _until_running(harness: Harness, run_id: str) -> None:
    """Woken by the run's claim (its event, in process or over Redis), with a deadline."""
    deadline = time.monotonic() + 30
    runs, signal = harness.services.runs, harness.services.signal
    while True:
        seen = signal.count
        if runs.get(run_id).status is RunStatus.RUNNING:
            return
        assert time.monotonic() < deadline, "the run was never claimed"
        signal.wait_after(seen, 1.0)


def test_a_stopped_run_is_killed_by_the_worker_that_holds_it(harness: Harness) -> None:
    task_id = harness.task(SLEEPY)
    run = harness.services.runs.request(task_id, requested_by="U1", input_data=b"x")
    _until_running(harness, run.id)
    harness.services.stops.stop_run(run.id, by="U1")
    done = harness.wait(run.id)
    assert done.status is RunStatus.KILLED, (done.status, done.killed_reason)
    assert done.killed_reason == "stopped" and done.stopped_by == "U1"


def test_a_queued_run_stopped_never_runs(harness: Harness) -> None:
    task_id = harness.task(SLEEPY)
    queued = harness.services.runs.request(task_id, requested_by="U1", input_data=b"x")
    queued_ids = [queued.id] + [
        harness.services.runs.request(task_id, requested_by="U1", input_data=b"x").id
        for _ in range(2)
    ]
    last = queued_ids[-1]  # two slots: the third waits its turn (queued, or for a slot)
    harness.services.stops.stop_run(last, by="U1")
    done = harness.wait(last)
    assert done.status is RunStatus.KILLED and done.killed_reason == "stopped"
    for run_id in queued_ids[:-1]:
        harness.services.stops.stop_run(run_id, by="U1")


def test_closing_the_local_pool_finishes_started_runs_and_leaves_the_queue_queued(
    local: Harness,
) -> None:
    """serve's stop (SIGTERM) must not wait for a long queue: what is queued stays queued in
    the database for the next start, and what was running ends as it would have."""
    task_id = local.task("import time\n\ndef run(input_path):\n    time.sleep(0.5)\n    return 1\n")
    runs = local.services.runs
    ids = [runs.request(task_id, requested_by="U1", input_data=b"x").id for _ in range(8)]
    _until_running(local, ids[0])
    pool = local.services.pool
    assert pool is not None
    pool.close()
    statuses = [runs.get(run_id).status for run_id in ids]
    assert RunStatus.RUNNING not in statuses
    assert statuses.count(RunStatus.QUEUED) >= 4, statuses
    assert set(statuses) <= {RunStatus.SUCCEEDED, RunStatus.QUEUED}, statuses
