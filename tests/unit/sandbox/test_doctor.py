"""`python -m bot doctor` names each protection a run relies on; the worker refuses without."""

from __future__ import annotations

import io
from dataclasses import replace

import pytest

from bot.config import Settings
from bot.roles.cli_run import doctor
from bot.worker.sandbox import HostIsolation, Sandbox, SandboxUnavailable

FULL = HostIsolation(
    is_root=True,
    network_namespace=True,
    mount_namespace=True,
    pid_namespace=True,
    mount_view=True,
    seccomp=True,
    landlock_abi=7,
    pidfd=True,
    cgroup_version=1,
    cgroup_memory="/m",
    cgroup_pids="/p",
    cgroup_cpu="/c",
)


def _doctor(iso: HostIsolation, monkeypatch: pytest.MonkeyPatch) -> tuple[int, str]:
    monkeypatch.setattr("bot.roles.cli_run.probe_host", lambda: iso)
    out = io.StringIO()
    return doctor(Settings(), out), out.getvalue()


def test_doctor_lists_every_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = _doctor(FULL, monkeypatch)
    assert code == 0
    for words in ("by any syscall", "PID namespace", "mount view", "CPU limit over all"):
        assert words in text
    assert "[ ]" not in text


@pytest.mark.parametrize(
    ("missing", "words"),
    [
        ({"pid_namespace": False}, "PID namespace"),
        ({"mount_view": False}, "stat()"),
        ({"seccomp": False}, "socket()"),
    ],
)
def test_without_a_protection_doctor_says_so_and_the_worker_refuses(
    missing: dict[str, bool], words: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    iso = replace(FULL, **missing)
    code, text = _doctor(iso, monkeypatch)
    assert code == 1 and words in text and "Runs are refused" in text
    with pytest.raises(SandboxUnavailable, match="refusing to run untrusted code"):
        Sandbox(slots=1, probe=lambda: iso).start()


def test_per_process_cpu_limit_is_a_note_not_a_refusal(monkeypatch: pytest.MonkeyPatch) -> None:
    code, text = _doctor(replace(FULL, cgroup_cpu=None), monkeypatch)
    assert code == 0 and "[ ] CPU limit over all its processes" in text
    assert "note: no CPU accounting cgroup" in text
