"""Small helpers of the zygote: its answer when a run ends, its own size, and finding and
killing what a run left behind."""

from __future__ import annotations

import contextlib
import os
import signal
from typing import Any

from . import protocol


def done_message(message: dict[str, Any], status: int, *, elapsed: float) -> dict[str, Any]:
    return {
        "op": protocol.OP_DONE,
        "run_id": message.get("run_id"),
        "wait_status": status,
        "elapsed": elapsed,
    }


def vm_size() -> int:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def uid_has_processes(uid: int) -> bool:
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{name}").st_uid == uid:
                return True
    return False


def kill_group(pid: int) -> None:
    for kill in (os.killpg, os.kill):
        with contextlib.suppress(OSError):
            kill(pid, signal.SIGKILL)
