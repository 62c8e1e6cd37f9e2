"""Fixtures for the sandbox integration tests: a shared sandbox, secrets to steal, helpers."""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.worker.sandbox import Sandbox, SandboxLimits, SandboxResult, probe_host

# Set before any sandbox starts: nothing of the app's environment may reach a run.
APP_SECRET = "app-secret-" + secrets.token_hex(8)
os.environ["TASKBOT_SANDBOX_TEST_SECRET"] = APP_SECRET

TEST_LIMITS = SandboxLimits(
    wall_seconds=8.0,
    cpu_seconds=3,
    memory_bytes=256 * 2**20,
    max_processes=16,
    max_file_bytes=16 * 2**20,
    max_open_files=64,
    max_output_bytes=64 * 1024,
    max_input_bytes=1 * 2**20,
)

_HERE = Path(__file__).parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    host = probe_host()
    if host.secure and host.is_root:
        return
    skip = pytest.mark.skip(reason=f"needs root and full isolation: {host.problems}")
    for item in items:
        if _HERE in Path(str(item.path)).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def sandbox() -> Iterator[Sandbox]:
    box = Sandbox(slots=2, limits=TEST_LIMITS)
    box.start()
    try:
        yield box
    finally:
        box.close()


def run(box: Sandbox, code: str, **kwargs: object) -> SandboxResult:
    kwargs.setdefault("input_path", None)
    return box.run(code=code, **kwargs)  # type: ignore[arg-type]


def slot_uids(box: Sandbox) -> set[int]:
    return {slot.config.uid for slot in box._slots if slot.config.uid is not None}


def processes_of(uids: set[int]) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            status = Path(f"/proc/{name}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if int(fields["Uid"].split()[0]) in uids and fields["State"].split()[0] not in "ZX":
            found.append(int(name))
    return found


def assert_healthy(box: Sandbox) -> None:
    """No process of a slot uid survives, no run dir is left, and runs still work."""
    assert processes_of(slot_uids(box)) == []
    for slot in box._slots:
        assert list(slot.host_slot_dir().iterdir()) == []
    for _ in range(len(box._slots)):
        result = run(box, "def run(p):\n    return 'ok'\n")
        assert (result.status, result.result) == ("succeeded", b"ok"), result


@dataclass(frozen=True)
class Secrets:
    """Files and values a run must not be able to read."""

    work_env_0644: Path
    work_env_0600: Path
    tmp_env_0644: Path
    tmp_env_0600: Path
    database: Path
    shm_file: Path
    value: str

    def paths(self) -> list[Path]:
        return [
            self.work_env_0644,
            self.work_env_0600,
            self.tmp_env_0644,
            self.tmp_env_0600,
            self.database,
            self.shm_file,
        ]


@pytest.fixture(scope="session")
def planted_secrets() -> Iterator[Secrets]:
    value = "planted-" + secrets.token_hex(8)
    work = Path(tempfile.mkdtemp(prefix="app-", dir=_HERE))
    tmp = Path(tempfile.mkdtemp(prefix="taskbot-app-"))
    os.chmod(work, 0o755)
    os.chmod(tmp, 0o755)
    files = Secrets(
        work_env_0644=work / ".env",
        work_env_0600=work / "private" / ".env",
        tmp_env_0644=tmp / ".env",
        tmp_env_0600=tmp / "secret.env",
        database=work / "taskbot.db",
        shm_file=Path("/dev/shm") / f"taskbot-test-{secrets.token_hex(4)}",
        value=value,
    )
    files.work_env_0600.parent.mkdir(mode=0o755)
    for path, mode in [
        (files.work_env_0644, 0o644),
        (files.work_env_0600, 0o600),
        (files.tmp_env_0644, 0o644),
        (files.tmp_env_0600, 0o600),
        (files.database, 0o644),
        (files.shm_file, 0o644),
    ]:
        path.write_text(f"SLACK_BOT_TOKEN={value}\n")
        os.chmod(path, mode)
    try:
        yield files
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
        files.shm_file.unlink(missing_ok=True)
