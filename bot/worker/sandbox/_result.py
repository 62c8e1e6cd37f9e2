"""Turn what the zygote reported and what the pipes carried into a SandboxResult (pure)."""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass, field
from typing import Any

from ._child import protocol
from .models import OutputFile, ResultKind, SandboxLimits, SandboxResult, Status

_KINDS: dict[str, ResultKind] = {"json": "json", "text": "text", "bytes": "bytes", "none": "none"}
_SIGNAL_REASONS: dict[int, str] = {int(signal.SIGXCPU): "cpu", int(signal.SIGXFSZ): "file_size"}
_PROCESS_ERRORS = {"BlockingIOError", "OSError"}


@dataclass
class Captured:
    """A capped byte stream read from a pipe."""

    cap: int
    data: bytearray = field(default_factory=bytearray)
    seen: int = 0

    def feed(self, chunk: bytes) -> None:
        self.seen += len(chunk)
        room = self.cap - len(self.data)
        if room > 0:
            self.data += chunk[:room]

    @property
    def truncated(self) -> bool:
        return self.seen > self.cap

    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


def build_result(
    *,
    report: dict[str, Any] | None,
    result_stream: Captured,
    stdout: Captured,
    stderr: Captured,
    limits: SandboxLimits,
    supervisor_kill: str | None,
    duration: float,
    output_files: tuple[OutputFile, ...] = (),
    omitted_files: tuple[str, ...] = (),
) -> SandboxResult:
    header, payload = (None, b"")
    if not result_stream.truncated:
        header, payload = protocol.decode_result(bytes(result_stream.data))
    status, reason, exit_code = _classify(
        report, header, limits=limits, supervisor_kill=supervisor_kill
    )
    ok = status == "succeeded" and header is not None
    error = header if header is not None and not header.get("ok") else {}
    if status == "failed" and not error:
        error = {
            "error_type": "NoResult",
            "error_message": f"the task process exited with code {exit_code} without a result",
        }
    return SandboxResult(
        status=status,
        result_kind=_KINDS.get(str(header.get("kind")), "none") if ok and header else "none",
        result=payload if ok else b"",
        result_truncated=bool(header.get("truncated")) if ok and header else False,
        stdout=stdout.text(),
        stdout_truncated=stdout.truncated,
        stderr=stderr.text(),
        stderr_truncated=stderr.truncated,
        # The run writes this header itself: clip each text to its share of the error part.
        error_type=_opt_str(error.get("error_type"), 200),
        error_message=_opt_str(error.get("error_message"), limits.error_bytes // 12),
        traceback_tail=_opt_str(error.get("traceback"), limits.error_bytes // 6, tail=True),
        killed_reason=reason,
        duration_seconds=duration,
        output_files=output_files,
        exit_code=exit_code,
        output_files_omitted=omitted_files,
        cpu_seconds=float((report or {}).get("cpu_seconds") or 0.0),
    )


def _opt_str(value: object, limit: int, *, tail: bool = False) -> str | None:
    if value is None:
        return None
    return protocol.clip(str(value), max(200, min(limit, protocol.TRACEBACK_LIMIT)), tail=tail)


def _classify(
    report: dict[str, Any] | None,
    header: dict[str, Any] | None,
    *,
    limits: SandboxLimits,
    supervisor_kill: str | None,
) -> tuple[Status, str | None, int | None]:
    """(status, killed_reason, exit_code) from the wait status and the limit counters."""
    if report is None:
        return "killed", supervisor_kill or "sandbox_error", None
    wait_status = int(report["wait_status"])
    exit_code = os.waitstatus_to_exitcode(wait_status)
    oom = int(report.get("oom_kills") or 0) > 0
    if supervisor_kill or report.get("kill_reason"):
        return "killed", supervisor_kill or str(report["kill_reason"]), exit_code
    if report.get("timed_out"):
        return "timed_out", "wall_time", exit_code
    if os.WIFSIGNALED(wait_status):
        sig = os.WTERMSIG(wait_status)
        if oom:
            return "killed", "memory", exit_code
        if sig == signal.SIGKILL and float(report.get("cpu_seconds") or 0) >= limits.cpu_seconds:
            return "killed", "cpu", exit_code
        return "killed", _SIGNAL_REASONS.get(sig) or f"signal {_signal_name(sig)}", exit_code
    if exit_code == protocol.EXIT_SETUP_FAILED:
        return "killed", "sandbox_error", exit_code
    if header is not None and header.get("ok"):
        return "succeeded", None, exit_code
    error_type = str(header.get("error_type")) if header is not None else ""
    if error_type == "MemoryError" or (oom and header is None):
        return "killed", "memory", exit_code
    message = str(header.get("error_message")) if header is not None else ""
    fork_refused = error_type == "BlockingIOError" and "temporarily unavailable" in message
    if fork_refused or (
        int(report.get("pids_limit_hits") or 0) > 0 and error_type in _PROCESS_ERRORS
    ):
        return "killed", "processes", exit_code
    return "failed", None, exit_code


def _signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)
