"""The flow process: the slow half of Slack (flows, model calls, the run watcher) and, with
``TASK_QUEUE=local``, the worker pool, in a process of its own.

``python -m bot serve`` keeps only the ack path in the web process: Python threads share one
interpreter lock, so background work in the same process delays acks (measured in
bench/bench_ack.py). The web process hands over plain values through a pipe: typed messages
(``bot.slack.messages``), and the ids of runs the HTTP API queued.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import signal
import threading
from multiprocessing.context import SpawnProcess
from typing import Any

from bot.config import Settings
from bot.slack.messages import Message

logger = logging.getLogger(__name__)

_STOP = "stop"
FLOW_NICENESS = 10
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the line above
        raise SystemExit(0)


def flow_main(settings: Settings, inbox: Any) -> None:
    """Entry point of the flow process (spawned: a fresh interpreter, no inherited threads)."""
    from bot.composition import Runner, build_services
    from bot.slack.app import build_flows

    # Acks come first: the web process keeps the CPU when both want it. And this process must
    # not outlive the web process that feeds it.
    os.setpriority(os.PRIO_PROCESS, 0, FLOW_NICENESS)
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the web process handles it and stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [flows]: %(message)s"
    )
    runner: Runner = "celery" if settings.task_queue == "celery" else "local"
    services = build_services(settings, runner=runner)
    if services.pool is not None:
        services.pool.recover(services.runs)
    flows = build_flows(services)
    flows.start()
    try:
        while True:
            item = inbox.get()
            if item == _STOP:
                break
            try:
                if isinstance(item, Message):
                    flows.dispatch(item)
                elif isinstance(item, tuple) and item[0] == "run":
                    services.runs.submit(str(item[1]))
            except Exception:
                logger.exception("the flow process could not take %r", item)
    finally:
        flows.close()
        services.close()


class FlowProcess:
    """Starts the flow process, hands it work, and starts it again if it dies."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._context = multiprocessing.get_context("spawn")
        self._inbox: Any = self._context.Queue()
        self._process: SpawnProcess | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._keep_alive, name="flow-process", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def _spawn(self) -> None:
        with self._lock:
            process = self._context.Process(
                target=flow_main, args=(self._settings, self._inbox), name="taskbot-flows"
            )
            # Ctrl-C reaches the whole process group, and the child imports for a while before
            # flow_main ignores it: an ignored SIGINT is inherited, and Python then leaves it so.
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                process.start()
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous or signal.default_int_handler)
            self._process = process

    def _keep_alive(self) -> None:
        delay = 1.0
        while not self._stopping.wait(delay):
            process = self._process
            if process is not None and not process.is_alive() and not self._stopping.is_set():
                logger.error("the flow process exited (%s); starting it again", process.exitcode)
                self._spawn()
                delay = min(delay * 2, 60.0)  # a process that keeps dying is not restarted hot
            elif process is not None and process.is_alive():
                delay = 1.0

    def dispatch(self, message: Message) -> None:
        self._inbox.put(message)

    def submit(self, run_id: str) -> None:
        """The web process's run queue (TASK_QUEUE=local): the pool lives in the flow process."""
        self._inbox.put(("run", run_id))

    def ping(self) -> None:
        process = self._process
        if process is None or not process.is_alive():
            raise RuntimeError("the flow process is not running")

    def close(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        self._inbox.put(_STOP)
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(5)
