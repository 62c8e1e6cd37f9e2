"""What every spawned child of ``serve`` does first: die with its parent, leave Ctrl-C to the
web process (it reaches the whole process group), and log with its role's tag."""

from __future__ import annotations

import ctypes
import logging
import os
import signal

from bot.config import Settings

_PR_SET_PDEATHSIG = 1


def become_child(settings: Settings, *, role: str) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the line above
        raise SystemExit(0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(
        level=settings.log_level,
        format=f"%(asctime)s %(levelname)s %(name)s [{role}]: %(message)s",
    )
