"""The web process's handle on the flow process (``bot.roles.flow``): starts it, hands it
typed messages, starts it again if it dies.

``python -m bot serve`` keeps only the ack path in the web process: Python threads share one
interpreter lock, so background work in the same process delays acks (measured in
bench/bench_ack.py). The web process hands over plain values through a pipe: typed messages
(``bot.slack.messages``), and the ids of runs the HTTP API queued. Typed values come back on a
second queue, dispatched by type: a check's answer (``CheckDone``), and every change of a run
the flow process's pool made (``RunChanged``), told to the web process's ``RunSignal`` so an
API wait on the run wakes as soon as it ends instead of at its next database read.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from multiprocessing.context import SpawnProcess
from typing import Any

from bot.config import Settings
from bot.services.checks import Execution
from bot.services.events import RunSignal
from bot.slack.messages import CheckDone, CheckRun, Message, QueuedRun, RunChanged, Stop
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)


class FlowProcess:
    """Starts the flow process, hands it work, and starts it again if it dies."""

    def __init__(
        self,
        settings: Settings,
        *,
        target: Callable[[Settings, Any, Any], None],
        signal: RunSignal,
    ) -> None:
        """``target(settings, inbox, replies)`` is the flow process's entry
        (``bot.roles.flow.main``); it answers a ``CheckRun`` on ``replies`` and says there
        which runs changed, which ``signal`` (the web process's) then hears."""
        self._settings = settings
        self._target = target
        self._signal = signal
        self._context = multiprocessing.get_context("spawn")
        self._inbox: Any = self._context.Queue()
        self._replies: Any = self._context.Queue()
        self._waiting: dict[str, Future[Execution]] = {}
        self._reader = threading.Thread(target=self._read, name="flow-replies", daemon=True)
        self._check_timeout = settings.sandbox_wall_seconds + 30.0
        self._process: SpawnProcess | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._keep_alive, name="flow-process", daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watch.start()
        self._reader.start()

    def execute(self, code: str) -> Execution:
        """Run a checks harness in the flow process's sandbox and wait for what it said."""
        request_id = uuid.uuid4().hex
        answer: Future[Execution] = Future()
        with self._lock:
            self._waiting[request_id] = answer
        self._inbox.put(CheckRun(request_id, code))
        try:
            return answer.result(timeout=self._check_timeout)
        except FutureTimeout:
            logger.error("the flow process did not answer a check run in time")
            return Execution(
                status=RunStatus.FAILED,
                result=b"",
                error_type="ChecksUnavailable",
                error_message="the checks could not be run now; try again in a moment",
                killed_reason=None,
            )
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def _read(self) -> None:
        while True:
            item = self._replies.get()
            if isinstance(item, Stop):
                return
            if isinstance(item, RunChanged):
                self._signal.heard(item.run_id)
            elif isinstance(item, CheckDone):
                with self._lock:
                    answer = self._waiting.get(item.request_id)
                if answer is not None and not answer.done():
                    answer.set_result(item.execution)
            else:
                logger.error("the flow process answered an unknown value %r", item)

    def _spawn(self) -> None:
        with self._lock:
            process = self._context.Process(
                target=self._target,
                args=(self._settings, self._inbox, self._replies),
                name="taskbot-flows",
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
        self._inbox.put(QueuedRun(run_id))

    def ping(self) -> None:
        process = self._process
        if process is None or not process.is_alive():
            raise RuntimeError("the flow process is not running")

    def close(self, timeout: float = 20.0) -> None:
        self._stopping.set()
        self._inbox.put(Stop())
        self._replies.put(Stop())
        process = self._process
        if process is not None:
            process.join(timeout)
            if process.is_alive():
                process.terminate()
                process.join(5)
