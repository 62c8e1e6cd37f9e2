"""Start-up (fail closed), recycling, zygote crashes, and cleanup on close."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bot.worker.sandbox import (
    HostIsolation,
    Sandbox,
    SandboxResult,
    SandboxUnavailable,
    StopSwitch,
    probe_host,
)

from .conftest import processes_of, run

TRIVIAL = "def run(p):\n    return 'ok'\n"


def test_probe_reports_full_isolation_here() -> None:
    iso = probe_host()
    assert iso.is_root and iso.seccomp and iso.network_namespace
    assert iso.landlock_abi is not None and iso.landlock_abi >= 6
    assert iso.secure and iso.problems == []


def test_fails_closed_without_network_isolation(tmp_path: Path) -> None:
    weak = dataclasses.replace(probe_host(), network_namespace=False, seccomp=False)
    box = Sandbox(slots=1, probe=lambda: weak, work_root=tmp_path / "w")
    with pytest.raises(SandboxUnavailable) as info:
        box.start()
    message = str(info.value)
    assert "SANDBOX_INSECURE=1" in message
    assert "seccomp" in message and "TCP/UDP" in message
    assert not (tmp_path / "w").exists() or list((tmp_path / "w").iterdir()) == []
    with pytest.raises(RuntimeError):
        box.run(code=TRIVIAL, input_path=None)


def test_fails_closed_without_landlock() -> None:
    weak = dataclasses.replace(probe_host(), landlock_abi=None)
    with pytest.raises(SandboxUnavailable, match="Landlock"):
        Sandbox(slots=1, probe=lambda: weak).start()


def test_insecure_opt_out_starts_with_what_is_left(caplog: pytest.LogCaptureFixture) -> None:
    weak = dataclasses.replace(probe_host(), network_namespace=False, seccomp=False)
    with (
        caplog.at_level("WARNING"),
        Sandbox(slots=1, probe=lambda: weak, allow_insecure=True) as box,
    ):
        assert not box.isolation.secure
        result = run(box, TRIVIAL)
        assert (result.status, result.result) == ("succeeded", b"ok")
    assert any("INSECURE" in r.getMessage() for r in caplog.records)


def test_zygotes_are_recycled() -> None:
    with Sandbox(slots=1, recycle_after=3, packages=()) as box:
        first = box._slots[0].proc.pid  # type: ignore[union-attr]
        for _ in range(7):
            assert run(box, TRIVIAL).status == "succeeded"
        assert box._slots[0].proc.pid != first  # type: ignore[union-attr]


def test_zygote_crash_mid_run_is_survived() -> None:
    with Sandbox(slots=1, packages=()) as box:
        uids = {box._slots[0].config.uid}
        zygote = box._slots[0].proc.pid  # type: ignore[union-attr]
        threading.Timer(0.5, os.kill, args=(zygote, signal.SIGKILL)).start()
        code = "import os, time\ndef run(p):\n    os.fork()\n    time.sleep(30)\n"
        started = time.monotonic()
        result = run(box, code)
        assert time.monotonic() - started < 5
        assert (result.status, result.killed_reason) == ("killed", "sandbox_error")
        assert processes_of(uids) == []  # type: ignore[arg-type]
        assert run(box, TRIVIAL).status == "succeeded"  # restarted


def test_close_removes_everything() -> None:
    box = Sandbox(slots=2, packages=())
    box.start()
    root = box._work_root
    cgroups = [d for slot in box._slots if slot.cgroup for d in slot.cgroup.dirs]
    zygotes = [slot.proc.pid for slot in box._slots if slot.proc]
    uids = {slot.config.uid for slot in box._slots}
    assert run(box, TRIVIAL).status == "succeeded"
    box.close()
    assert root is not None and not root.exists()
    assert cgroups and not any(d.exists() for d in cgroups)
    # close() waits for its zygotes: once it returns they are reaped, gone from /proc.
    assert not any(Path(f"/proc/{pid}").exists() for pid in zygotes)
    assert processes_of(uids) == []  # type: ignore[arg-type]


def test_missing_package_is_an_import_error_for_the_task() -> None:
    with Sandbox(slots=1, packages=("no_such_pkg_xyz",)) as box:
        result = run(box, "import no_such_pkg_xyz\ndef run(p):\n    return 1\n")
        assert (result.status, result.error_type) == ("failed", "ModuleNotFoundError")


def test_host_isolation_fields() -> None:
    iso = HostIsolation()
    assert not iso.secure
    assert len(iso.problems) == 5  # seccomp, Landlock, pidfd, PID namespace, mount view


def test_zygote_dead_between_runs_is_replaced() -> None:
    with Sandbox(slots=1, packages=()) as box:
        zygote = box._slots[0].proc
        assert zygote is not None
        zygote.kill()
        zygote.wait()
        result = run(box, TRIVIAL)
        assert (result.status, result.result) == ("succeeded", b"ok")
        assert box._slots[0].proc is not None and box._slots[0].proc.pid != zygote.pid


def test_missing_input_is_the_callers_error(sandbox: Sandbox, tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        run(sandbox, TRIVIAL, input_path=tmp_path / "nope.csv")
    assert run(sandbox, TRIVIAL).status == "succeeded"


def test_stale_work_roots_of_crashed_owners_are_removed() -> None:
    import tempfile

    stale = Path(tempfile.mkdtemp(prefix="taskbot-sandbox-"))
    (stale / ".lock").touch()
    (stale / "slot-0").mkdir()
    foreign = Path(tempfile.mkdtemp(prefix="taskbot-sandbox-"))  # no lock file: not touched
    try:
        with Sandbox(slots=1, packages=()) as box:
            assert not stale.exists()
            assert foreign.exists()
            assert run(box, TRIVIAL).status == "succeeded"
    finally:
        foreign.rmdir()


def test_a_run_stopped_while_waiting_for_a_slot_ends_without_waiting() -> None:
    """Stop pressed on a run whose turn has not come (every slot busy): it ends killed
    ("stopped") then, not when a slot frees, and nothing of it runs; a run stopped before it
    was handed over never takes a slot."""
    sleeper = "import time\ndef run(p):\n    time.sleep(6)\n    return 1\n"
    outcomes: dict[str, SandboxResult] = {}
    with Sandbox(slots=1, packages=(), light=False) as box:
        holder = threading.Thread(target=lambda: outcomes.setdefault("sleeper", run(box, sleeper)))
        holder.start()
        deadline = time.monotonic() + 10
        while box._running._value:  # type: ignore[attr-defined]  # until the sleeper has the slot
            assert time.monotonic() < deadline, "the sleeper never took the slot"
            time.sleep(0.01)
        switch = StopSwitch()
        waiter = threading.Thread(
            target=lambda: outcomes.setdefault(
                "waiter", run(box, "def run(p):\n    return 2\n", stop=switch)
            )
        )
        waiter.start()
        switch.flip()
        waiter.join(5)
        assert not waiter.is_alive() and "sleeper" not in outcomes  # it did not wait for the slot
        stopped = outcomes["waiter"]
        assert (stopped.status, stopped.killed_reason, stopped.result) == ("killed", "stopped", b"")
        early = StopSwitch()
        early.flip()
        before = run(box, "def run(p):\n    return 3\n", stop=early)
        assert (before.status, before.killed_reason) == ("killed", "stopped")
        holder.join(15)
        assert outcomes["sleeper"].status == "succeeded"
