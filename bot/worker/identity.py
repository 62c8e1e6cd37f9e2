"""Who a worker is: ``host:pid:start``, recorded on each run it claims, read back to tell
whether that worker still lives (``bot.worker.local.local_worker_alive``)."""

from __future__ import annotations

import os
import socket
from pathlib import Path


def process_start_ticks(pid: int | str = "self") -> str:
    """When a process started (clock ticks since boot), so a reused pid is not mistaken for it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[1].split()[19]


def worker_id() -> str:
    """This process's worker id (computed when asked: a forked or spawned child has its own)."""
    return f"{socket.gethostname()}:{os.getpid()}:{process_start_ticks()}"
