"""Public value types of the sandbox."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

Status = Literal["succeeded", "failed", "timed_out", "killed"]
ResultKind = Literal["json", "text", "bytes", "none"]


@dataclass(frozen=True)
class SandboxLimits:
    wall_seconds: float = 30.0
    cpu_seconds: int = 20
    memory_bytes: int = 512 * 2**20
    max_processes: int = 32
    max_file_bytes: int = 50 * 2**20
    max_open_files: int = 256
    # Everything kept of a run together: result, stdout, stderr, error texts and output files.
    max_output_bytes: int = 1 * 2**20
    max_input_bytes: int = 20 * 2**20

    @property
    def result_bytes(self) -> int:
        """The result's part of the kept output: a half (512 KiB of 1 MiB)."""
        return self.max_output_bytes // 2

    @property
    def stream_bytes(self) -> int:
        """stdout's part, and stderr's: a sixteenth each (64 KiB of 1 MiB)."""
        return self.max_output_bytes // 16

    @property
    def error_bytes(self) -> int:
        """Reserved for the error type, message and traceback tail: a sixteenth."""
        return self.max_output_bytes // 16

    def output_files_budget(self, *, kept: int) -> int:
        """What output files may keep once ``kept`` bytes of result and streams are kept: at
        least 5/16 (320 KiB of 1 MiB), plus whatever the result and streams left unused."""
        return max(0, self.max_output_bytes - self.error_bytes - kept)

    def __post_init__(self) -> None:
        if self.wall_seconds <= 0 or self.cpu_seconds <= 0:
            raise ValueError("wall_seconds and cpu_seconds must be positive")
        if self.memory_bytes < 16 * 2**20:
            raise ValueError("memory_bytes must be at least 16 MiB")
        if min(self.max_processes, self.max_file_bytes, self.max_output_bytes) <= 0:
            raise ValueError("limits must be positive")
        if self.max_open_files < 16 or self.max_input_bytes < 0:
            raise ValueError("max_open_files must be >= 16 and max_input_bytes >= 0")

    def to_wire(self) -> dict[str, Any]:
        return asdict(self) | {"max_result_bytes": self.result_bytes}


@dataclass(frozen=True)
class OutputFile:
    name: str  # path relative to output/, "/"-separated
    size: int
    content: bytes


@dataclass(frozen=True)
class SandboxResult:
    status: Status
    result_kind: ResultKind
    result: bytes
    result_truncated: bool
    stdout: str
    stdout_truncated: bool
    stderr: str
    stderr_truncated: bool
    error_type: str | None
    error_message: str | None
    traceback_tail: str | None
    killed_reason: str | None
    duration_seconds: float
    output_files: tuple[OutputFile, ...]
    exit_code: int | None
    # Regular files under output/ that were not collected (over the size or count cap).
    output_files_omitted: tuple[str, ...] = ()
    cpu_seconds: float = 0.0  # user + system CPU time of the run's process (its cost)


def stopped_before_start() -> SandboxResult:
    """A run stopped (its switch flipped) before a slot was free: nothing of it ran."""
    return SandboxResult(
        status="killed",
        result_kind="none",
        result=b"",
        result_truncated=False,
        stdout="",
        stdout_truncated=False,
        stderr="",
        stderr_truncated=False,
        error_type=None,
        error_message=None,
        traceback_tail=None,
        killed_reason="stopped",
        duration_seconds=0.0,
        output_files=(),
        exit_code=None,
    )


class SandboxUnavailable(Exception):
    """The host cannot isolate untrusted code and the insecure opt-out was not given."""
