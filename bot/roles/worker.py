"""The worker role, ``python -m bot worker``: a Celery worker that executes runs in the
sandbox and publishes each run's changes (``bot.worker.relay``)."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
import subprocess
import sys
import time

from bot.composition import build_services
from bot.config import Settings
from bot.prog import hint
from bot.worker.celery_app import (
    CeleryQueue,
    Sweeper,
    make_celery,
    register_worker_task,
    requeue_after,
    sweep_seconds,
)

logger = logging.getLogger(__name__)
_PR_SET_PDEATHSIG = 1


CHILD_FLAG = "TASKBOT_WORKER_CHILD"


def run_worker(settings: Settings) -> int:
    if settings.task_queue != "celery":
        logger.error(
            "TASK_QUEUE=local runs tasks inside `%s`; "
            "set TASK_QUEUE=celery and CELERY_BROKER_URL to run separate workers",
            hint("serve"),
        )
        return 2
    if os.environ.get(CHILD_FLAG):
        return _celery_worker(settings)
    return _supervise()


def _supervise() -> int:
    """Keep one Celery worker process running: Celery gives up ("Unrecoverable error") on some
    broker losses, which must not take the worker role down with it."""
    stopping = False
    child: subprocess.Popen[bytes] | None = None

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        if child is not None and child.poll() is None:
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    delay = 1.0
    while True:
        started = time.monotonic()
        child = subprocess.Popen(
            [sys.executable, "-m", "bot", "worker"], env={**os.environ, CHILD_FLAG: "1"}
        )
        code = child.wait()
        if stopping:
            return code
        # Not asked to stop, so any exit (Celery reports its unrecoverable errors with 0 too)
        # means the worker role is gone: bring it back.
        if time.monotonic() - started > 60:
            delay = 1.0
        logger.error("the Celery worker exited with %s; starting it again in %.0f s", code, delay)
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


def _celery_worker(settings: Settings) -> int:
    # A worker whose supervisor is gone (kill -9) goes too, with the runs it holds.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() == 1:
        return 1
    app = make_celery(settings)
    services = build_services(settings, runner="celery", celery_app=app, worker=True)
    assert services.executor is not None
    register_worker_task(app, services.runs, services.executor)
    sweeper = Sweeper(
        services.runs, CeleryQueue(app), every=sweep_seconds(), requeue_after=requeue_after()
    )
    sweeper.start()
    try:
        app.worker_main(
            [
                "worker",
                "--pool=threads",
                f"--concurrency={settings.worker_concurrency}",
                f"--loglevel={settings.log_level}",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ]
        )
    finally:
        sweeper.stop()
        services.close()
    return 0
