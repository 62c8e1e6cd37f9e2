"""Users' data at rest: the database files and every run file are the app's user's only;
a dropped input and a deleted task leave no bytes in the data directory."""

from __future__ import annotations

import os
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.composition import Services, build_services
from bot.config import Settings
from storage import migrate
from storage.db import make_engine
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

NOBODY = 65534
SLEEPY = (
    "import time\n\ndef run(input_path):\n    time.sleep(2)\n    return open(input_path).read()\n"
)
ECHO = "def run(input_path):\n    return len(open(input_path, 'rb').read())\n"


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """A data directory any account may enter, so only the files' own modes protect them."""
    with tempfile.TemporaryDirectory(prefix="taskbot-rest-") as folder:
        os.chmod(folder, 0o755)
        yield Path(folder)


@pytest.fixture
def services(data_dir: Path) -> Iterator[Services]:
    url = f"sqlite:///{data_dir / 'taskbot.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    built = build_services(
        Settings(database_url=url, sandbox_wall_seconds=10, worker_concurrency=1),
        engine=engine,
        generator=FakeCodeGenerator(),
        runner="local",
    )
    yield built
    built.close()


def _task(services: Services, code: str) -> str:
    model = services.generator
    assert isinstance(model, FakeCodeGenerator)
    model.queue(answer_json(code=code))
    detail = services.tasks.create(
        description="at rest", task_type="passthrough", requested_by="U1", source="cli"
    )
    return detail.task.id


def _readable_by_nobody(paths: list[Path]) -> list[str]:
    """The paths an unprivileged account (nobody) manages to open for reading."""
    probe = (
        "import sys\n"
        "for p in sys.argv[1:]:\n"
        "    try:\n"
        "        open(p, 'rb').close()\n"
        "    except OSError:\n"
        "        continue\n"
        "    print(p)\n"
    )
    done = subprocess.run(
        ["/usr/bin/python3", "-I", "-S", "-c", probe, *map(str, paths)],
        user=NOBODY,
        group=NOBODY,
        extra_groups=[],
        capture_output=True,
        text=True,
        check=True,
        cwd="/",
    )
    return done.stdout.split()


def _files_under(root: Path) -> list[Path]:
    return [Path(d) / f for d, _, files in os.walk(root) for f in files]


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch to another account")
def test_the_database_files_and_every_run_file_are_refused_to_another_account(
    services: Services, data_dir: Path
) -> None:
    task_id = _task(services, SLEEPY)
    run = services.runs.request(task_id, requested_by="U1", input_data=b"private words")
    sandbox = services.sandboxes.get()  # type: ignore[union-attr]
    deadline = 200
    while services.runs.get(run.id).status != "running":  # poll with a deadline
        deadline -= 1
        assert deadline, "the run never started"
        services.signal.wait_after(services.signal.count, 0.05)
    work_root = sandbox._work_root  # the slots' directories, as the host sees them
    assert work_root is not None

    # While it runs: its input, written into the run's own directory (inside its slot's
    # mount namespace, reached here through /proc), and every file under the sandbox's slots.
    def slot_files() -> list[Path]:
        dirs = [work_root, *(slot.host_slot_dir() for slot in sandbox._slots)]
        return [f for d in dirs for f in _files_under(d)]

    def input_copies() -> list[Path]:
        return [f for f in slot_files() if f.read_bytes() == b"private words"]

    while not input_copies():  # written just after the claim: poll with a deadline
        deadline -= 1
        assert deadline, "the run's input never appeared in its directory"
        services.signal.wait_after(services.signal.count, 0.02)
    run_files = slot_files()
    database = [p for p in _files_under(data_dir) if p.name.startswith("taskbot.db")]
    assert {p.name for p in database} >= {
        "taskbot.db",
        "taskbot.db-wal",
        "taskbot.db-shm",
        "taskbot.db-writer",  # the writer lock between processes (storage.sqlite_writes)
    }
    export = services.tasks.export(task_id, directory=data_dir / "user_tasks")
    exported = _files_under(export)
    assert len(exported) == 2
    assert _readable_by_nobody([*database, *run_files, *exported]) == []
    assert {oct(p.stat().st_mode & 0o777) for p in [*database, *exported]} == {"0o600"}
    assert services.runs.wait(run.id, timeout=30).status == "succeeded"


def _found(marker: bytes, root: Path) -> list[str]:
    return [str(p) for p in _files_under(root) if marker in p.read_bytes()]


def test_a_dropped_input_leaves_no_bytes_in_the_data_directory(
    services: Services, data_dir: Path
) -> None:
    marker = f"confidential-{uuid.uuid4().hex}-{uuid.uuid4().hex}".encode()
    task_id = _task(services, ECHO)
    # The run's record keeps a profile of the file, with a text file's first five lines (to
    # tell the model what the file looks like, README "Data"); the rest is the user's data.
    preview = b"".join(b"line %d\n" % i for i in range(6))
    data = preview + marker * 200  # big enough to spill into overflow pages
    run = services.runs.request(task_id, requested_by="U1", input_data=data)
    done = services.runs.wait(run.id, timeout=30)
    assert done.status == "succeeded" and done.result == str(len(data)).encode()
    assert services.pool is not None and services.pool.wait_idle(timeout=30)
    assert services.uow.scrubber.wait_idle(timeout=30)  # the WAL scrub after it
    assert _found(b"line 4", data_dir)  # the profile, as documented
    assert _found(marker, data_dir) == []


def test_task_delete_leaves_none_of_its_data_in_the_data_directory(
    services: Services, data_dir: Path
) -> None:
    marker = f"secret-{uuid.uuid4().hex}"
    code = f"# {marker}\n" + ECHO
    task_id = _task(services, code)
    data = b"first\n" * 6 + marker.encode() * 50
    run = services.runs.request(task_id, requested_by="U1", input_data=data)
    assert services.runs.wait(run.id, timeout=30).status == "succeeded"
    assert services.pool is not None and services.pool.wait_idle(timeout=30)
    assert _found(marker.encode(), data_dir)  # the code is kept while the task lives
    services.housekeeping.delete(task_id)
    assert _found(marker.encode(), data_dir) == []
