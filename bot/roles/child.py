"""What every spawned child of ``serve`` does first: die with its parent, leave Ctrl-C to the
web process (it reaches the whole process group), and log with its role's tag."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from collections.abc import Callable, Mapping
from typing import Any

from bot.config import Settings
from bot.services.checks import Execute, Execution
from bot.services.handoff import CheckDone, CheckRun, Stop
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)

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


def answer_check(execute: Execute, item: CheckRun, replies: Any, *, role: str) -> None:
    """Run a ``CheckRun``'s harness with ``execute`` (here, or a process further down) and put
    what it said on ``replies``; a failure to run it is an answer too, never a silence."""
    try:
        execution = execute(item.code)
    except Exception as exc:
        logger.exception("a check run failed in the %s process", role)
        execution = Execution(
            status=RunStatus.FAILED,
            result=b"",
            error_type="SandboxError",
            error_message=f"The sandbox could not run the checks: {exc}",
            killed_reason=None,
        )
    replies.put(CheckDone(item.request_id, execution))


def take_until_stop(
    inbox: Any, handlers: Mapping[type, Callable[[Any], object]], *, role: str
) -> None:
    """Hand each value from ``inbox`` to the handler of the first type it is an instance of,
    until a ``Stop``; a value no handler takes, or one whose handler fails, is logged and the
    next one taken."""
    while True:
        item = inbox.get()
        if isinstance(item, Stop):
            return
        handle = next((h for kind, h in handlers.items() if isinstance(item, kind)), None)
        if handle is None:
            logger.error("the %s process got an unknown value %r", role, item)
            continue
        try:
            handle(item)
        except Exception:
            logger.exception("the %s process could not take %r", role, item)
