"""Pure helpers of the sandbox: no processes are started here."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import pytest

from bot.worker.sandbox import HostIsolation, SandboxLimits, SandboxResult
from bot.worker.sandbox._child import protocol
from bot.worker.sandbox._child.runner import _encode_value
from bot.worker.sandbox._result import Captured, build_result
from bot.worker.sandbox._rundir import collect_outputs, safe_input_name

LIMITS = SandboxLimits(cpu_seconds=5, max_output_bytes=100)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("data.csv", "data.csv"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\x\\report.xlsx", "report.xlsx"),
        (".env", "env"),
        ("...", "input"),
        ("", "input"),
        (None, "input"),
        ("output", "input"),
        ("a\x00b\nc.txt", "abc.txt"),
        ("é" * 300, "é" * 100),
    ],
)
def test_safe_input_name(given: str | None, expected: str) -> None:
    assert safe_input_name(given) == expected


def test_encode_value_kinds() -> None:
    assert _encode_value(None) == ("none", b"")
    assert _encode_value(b"ab") == ("bytes", b"ab")
    assert _encode_value(bytearray(b"ab")) == ("bytes", b"ab")
    assert _encode_value("é") == ("text", "é".encode())
    assert _encode_value({"k": "é"}) == ("json", '{"k": "é"}'.encode())
    with pytest.raises(TypeError, match="not JSON-serialisable"):
        _encode_value({"k": object()})


def test_decode_result() -> None:
    header = {"v": 1, "ok": True, "kind": "text"}
    assert protocol.decode_result(protocol.encode_header(header) + b"pay\nload") == (
        header,
        b"pay\nload",
    )
    assert protocol.decode_result(b"no newline") == (None, b"")
    assert protocol.decode_result(b"[1]\nx") == (None, b"")
    assert protocol.decode_result(b'{"v": 2}\nx') == (None, b"")


def test_captured_caps_and_flags() -> None:
    cap = Captured(5)
    cap.feed(b"abc")
    assert not cap.truncated
    cap.feed(b"defgh")
    assert cap.truncated and bytes(cap.data) == b"abcde" and cap.seen == 8
    assert Captured(10, bytearray(b"\xff")).text() == "\ufffd"


def _result(
    report: dict[str, object] | None,
    header: dict[str, object] | None = None,
    payload: bytes = b"",
    kill: str | None = None,
) -> SandboxResult:
    stream = Captured(LIMITS.max_output_bytes + protocol.HEADER_LIMIT)
    if header is not None:
        stream.feed(protocol.encode_header(header) + payload)
    return build_result(
        report=report,
        result_stream=stream,
        stdout=Captured(10),
        stderr=Captured(10),
        limits=LIMITS,
        supervisor_kill=kill,
        duration=0.1,
    )


def _exited(code: int) -> int:
    return code << 8


def test_classify_success_and_failure() -> None:
    ok = _result(
        {"wait_status": _exited(0)},
        {"v": 1, "ok": True, "kind": "json", "truncated": False},
        b"[1]",
    )
    assert (ok.status, ok.result_kind, ok.result, ok.exit_code) == ("succeeded", "json", b"[1]", 0)
    err = {"v": 1, "ok": False, "error_type": "KeyError", "error_message": "'x'", "traceback": "tb"}
    failed = _result({"wait_status": _exited(1)}, err)
    assert (failed.status, failed.error_type, failed.traceback_tail) == ("failed", "KeyError", "tb")
    silent = _result({"wait_status": _exited(3)})
    assert (silent.status, silent.error_type, silent.exit_code) == ("failed", "NoResult", 3)


@pytest.mark.parametrize(
    ("report", "header", "kill", "expected"),
    [
        ({"wait_status": signal.SIGKILL, "oom_kills": 1}, None, None, ("killed", "memory")),
        ({"wait_status": signal.SIGXCPU}, None, None, ("killed", "cpu")),
        ({"wait_status": signal.SIGKILL, "cpu_seconds": 5.2}, None, None, ("killed", "cpu")),
        ({"wait_status": signal.SIGXFSZ}, None, None, ("killed", "file_size")),
        ({"wait_status": signal.SIGSEGV}, None, None, ("killed", "signal SIGSEGV")),
        (
            {"wait_status": signal.SIGKILL, "timed_out": True},
            None,
            None,
            ("timed_out", "wall_time"),
        ),
        ({"wait_status": signal.SIGKILL}, None, "output", ("killed", "output")),
        (None, None, None, ("killed", "sandbox_error")),
        ({"wait_status": protocol.EXIT_SETUP_FAILED << 8}, None, None, ("killed", "sandbox_error")),
        (
            {"wait_status": 1 << 8},
            {"v": 1, "ok": False, "error_type": "MemoryError"},
            None,
            ("killed", "memory"),
        ),
        (
            {"wait_status": 1 << 8, "pids_limit_hits": 2},
            {"v": 1, "ok": False, "error_type": "BlockingIOError"},
            None,
            ("killed", "processes"),
        ),
    ],
)
def test_classify_kills(
    report: dict[str, object] | None,
    header: dict[str, object] | None,
    kill: str | None,
    expected: tuple[str, str],
) -> None:
    result = _result(report, header, kill=kill)
    assert (result.status, result.killed_reason) == expected
    assert result.result == b""


def test_overflowing_result_stream_is_not_parsed() -> None:
    stream = Captured(10)
    stream.feed(protocol.encode_header({"v": 1, "ok": True, "kind": "text"}) + b"x" * 100)
    result = build_result(
        report={"wait_status": 0},
        result_stream=stream,
        stdout=Captured(1),
        stderr=Captured(1),
        limits=LIMITS,
        supervisor_kill=None,
        duration=0,
    )
    assert result.status == "failed" and result.result == b""


def test_host_isolation_policy() -> None:
    full = HostIsolation(
        is_root=True,
        network_namespace=True,
        mount_namespace=True,
        seccomp=True,
        landlock_abi=7,
        pidfd=True,
        pid_namespace=True,
        mount_view=True,
        cgroup_memory="/m",
        cgroup_pids="/p",
        cgroup_cpu="/c",
    )
    assert full.secure and full.problems == [] and full.warnings == []
    no_pidns = replace(full, pid_namespace=False, mount_view=False)
    assert not no_pidns.secure  # host processes and file metadata would be visible
    assert any("PID namespace" in p for p in no_pidns.problems)
    assert any("stat()" in p for p in no_pidns.problems)
    per_process_cpu = replace(full, cgroup_cpu=None)
    assert per_process_cpu.secure and any("per process" in w for w in per_process_cpu.warnings)
    no_net = HostIsolation(is_root=True, landlock_abi=7, pidfd=True)
    assert not no_net.secure
    assert any("TCP/UDP" in p for p in no_net.problems)
    netns_only = HostIsolation(is_root=True, network_namespace=True, landlock_abi=7, pidfd=True)
    assert not netns_only.secure  # the PostgreSQL unix socket would stay reachable
    assert any("named unix sockets" in p for p in netns_only.problems)
    no_landlock = HostIsolation(is_root=True, seccomp=True, pidfd=True)
    assert any(".env" in p for p in no_landlock.problems)
    old_landlock = replace(full, landlock_abi=3)
    assert old_landlock.secure and any("ABI < 4" in w for w in old_landlock.warnings)


def test_limits_validation() -> None:
    with pytest.raises(ValueError):
        SandboxLimits(wall_seconds=0)
    with pytest.raises(ValueError):
        SandboxLimits(memory_bytes=1024)
    assert SandboxLimits().to_wire()["memory_bytes"] == 512 * 2**20


def test_collect_outputs_never_follows_symlinks(tmp_path: Path) -> None:
    out = tmp_path / "run" / "work" / "output"
    (out / "sub").mkdir(parents=True)
    (out / "a.txt").write_bytes(b"A")
    (out / "sub" / "b.txt").write_bytes(b"B")
    (out / "big.bin").write_bytes(b"x" * 101)
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    (out / "link").symlink_to(secret)
    (out / "dirlink").symlink_to(tmp_path)
    os.mkfifo(out / "fifo")
    files, omitted = collect_outputs(tmp_path / "run", max_bytes=100, owner_uid=None)
    assert [(f.name, f.content) for f in files] == [("a.txt", b"A"), ("sub/b.txt", b"B")]
    assert omitted == ("big.bin",)
    files, _ = collect_outputs(tmp_path / "run", max_bytes=100, owner_uid=os.getuid() + 1)
    assert files == ()


def test_collect_outputs_with_symlinked_output_dir(tmp_path: Path) -> None:
    (tmp_path / "run" / "work").mkdir(parents=True)
    target = tmp_path / "elsewhere"
    target.mkdir()
    (target / "x").write_text("x")
    (tmp_path / "run" / "work" / "output").symlink_to(target)
    assert collect_outputs(tmp_path / "run", max_bytes=100, owner_uid=None) == ((), ())
