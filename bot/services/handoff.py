"""A child process of one role, fed typed values through a pipe, started again if it dies.

``python -m bot serve`` runs three processes with ``TASK_QUEUE=local``: the web process (acks),
its flow process (Slack flows, model calls, run messages) and the flow process's pool process
(the sandbox and the runs). Python threads share one interpreter lock, so work in one of them
delays the others: acks wait behind flows (``bench/bench_ack.py``), runs behind uploads
(``bench/bench_serve_runs.py``). Each parent holds a ``ChildProcess``: what goes down is a
frozen value per kind (below, and the Slack flows' ``bot.slack.messages``), what comes back is
dispatched by type: a check's answer to the one waiting for it (``CheckDone``), a run's change
to ``on_change`` (``RunChanged``). The database stays the truth: a change lost with a dying
process costs a sweep, never a result."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import pickle
import signal
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from typing import Any

from bot.config import Settings
from bot.services.checks import Execution
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)


# --- from a parent down to its child ---


@dataclass(frozen=True)
class QueuedRun:
    """A queued run for the pool (``TASK_QUEUE=local``), wherever it was queued."""

    run_id: str


@dataclass(frozen=True)
class CheckRun:
    """A version's checks (their harness module) to run in the sandbox, which only the pool's
    process starts. The answer comes back as a ``CheckDone``."""

    request_id: str
    code: str


@dataclass(frozen=True)
class Stop:
    """The child stops after what it already took."""


# --- both ways ---


@dataclass(frozen=True)
class RunChanged:
    """A run's state changed (committed) in the sending process: the receiver tells its own
    ``RunSignal``, so a wait on the run or its Slack message wakes at once. ``started``: the
    change was the run's start (a watcher need not read a run that has only just started)."""

    run_id: str
    started: bool = False


# --- from a child back up ---


@dataclass(frozen=True)
class CheckDone:
    """What the sandbox said about a ``CheckRun``'s harness."""

    request_id: str
    execution: Execution


Target = Callable[[Settings, Any, Any], None]


class Channel:
    """A child's way back to its parent: a pipe each value is written to at once by the thread
    that sends it, where a ``multiprocessing.Queue`` hands every value to a feeder thread first
    (one thread woken less per run change). Its writers (the child's threads) queue on a lock
    of the child's own, not one shared with the parent, so a child that dies while sending
    leaves nothing locked behind it. ``put`` blocks while the pipe is full: the parent reads it
    on a thread of its own."""

    def __init__(self, context: Any) -> None:
        self._reader, self._writer = context.Pipe(duplex=False)
        self._lock = threading.Lock()

    def __getstate__(self) -> tuple[Any, Any]:  # into the child, as its process's argument
        return self._reader, self._writer

    def __setstate__(self, state: tuple[Any, Any]) -> None:
        self._reader, self._writer = state
        self._lock = threading.Lock()

    def put(self, item: object) -> None:
        with self._lock:
            self._writer.send(item)

    def sender_started(self) -> None:
        """(In the parent, once the child holds its copy.) The parent never writes here: with
        its copy closed, the child's end makes the pipe end, and its reader with it."""
        self._writer.close()

    def get(self) -> object:
        """The next value (one reader at a time); ``EOFError`` once the child's end is closed
        and everything it sent was read."""
        return self._reader.recv()


class ChildProcess:
    """Starts ``target(settings, inbox, replies)`` in a spawned process, hands it values, reads
    its replies, and starts it again if it dies.

    Each start gets queues of its own: a child that dies inside a queue's ``get`` or ``put``
    (killed, out of memory) takes that queue's lock with it, and a child started on the same
    queues would wait on it for ever. What the dead child had not taken yet is lost with its
    queue (the database still holds every queued run: the pool's start takes them up again);
    checks it had not answered are answered "unavailable" at once."""

    def __init__(
        self,
        settings: Settings,
        *,
        target: Target,
        name: str,
        on_change: Callable[[RunChanged], None],
        check_timeout: float | None = None,
        stop_timeout: float = 20.0,
    ) -> None:
        """``check_timeout``: how long a check waits for its answer (default: the sandbox's
        wall time and 30 s); ``stop_timeout``: how long ``close`` lets the child finish."""
        self._settings = settings
        self._target = target
        self._name = name
        self._on_change = on_change
        self._context = multiprocessing.get_context("spawn")
        self._inbox: Any = None
        self._replies: Any = None
        self._waiting: dict[str, Future[Execution]] = {}
        self._check_timeout = (
            check_timeout if check_timeout is not None else settings.sandbox_wall_seconds + 30.0
        )
        self._stop_timeout = stop_timeout
        self._process: SpawnProcess | None = None
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._watch = threading.Thread(target=self._keep_alive, name=name, daemon=True)

    def start(self) -> None:
        self._spawn()
        self._watch.start()

    def send(self, item: object) -> None:
        with self._lock:
            inbox = self._inbox
        if inbox is None:
            raise RuntimeError(f"the {self._name} process was never started")
        inbox.put(item)

    def submit(self, run_id: str) -> None:
        """A run queue (``bot.services.runs.RunQueue``): the pool is in the child, or below it."""
        self.send(QueuedRun(run_id))

    def execute(self, code: str) -> Execution:
        """Run a checks harness in the child's sandbox (or below it) and wait for the answer."""
        request_id = uuid.uuid4().hex
        answer: Future[Execution] = Future()
        with self._lock:
            self._waiting[request_id] = answer
        try:
            self.send(CheckRun(request_id, code))
            return answer.result(timeout=self._check_timeout)
        except FutureTimeout:
            logger.error("the %s process did not answer a check run in time", self._name)
            return _UNAVAILABLE
        finally:
            with self._lock:
                self._waiting.pop(request_id, None)

    def _read(self, replies: Any) -> None:
        """Read one start's replies to their end: the pipe ends with its child (only the
        child holds its sending end), after everything it sent; or at a ``Stop``."""
        while True:
            try:
                item = replies.get()
            except (EOFError, OSError):  # the child ended (``_keep_alive`` tells why)
                return
            except pickle.UnpicklingError:  # each value is framed: the next one still reads
                logger.exception("the %s process sent a value that does not read", self._name)
                continue
            if isinstance(item, Stop):
                return
            if isinstance(item, RunChanged):
                try:
                    self._on_change(item)
                except Exception:
                    logger.exception("could not pass on the change of run %s", item.run_id)
            elif isinstance(item, CheckDone):
                with self._lock:
                    answer = self._waiting.get(item.request_id)
                if answer is not None and not answer.done():
                    answer.set_result(item.execution)
            else:
                logger.error("the %s process answered an unknown value %r", self._name, item)

    def _spawn(self) -> None:
        with self._lock:
            inbox, replies = self._context.Queue(), Channel(self._context)
            process = self._context.Process(
                target=self._target,
                args=(self._settings, inbox, replies),
                name=f"taskbot-{self._name}",
            )
            # Ctrl-C reaches the whole process group, and the child imports for a while before
            # its entry ignores it: an ignored SIGINT is inherited, and Python then leaves it so.
            main = threading.current_thread() is threading.main_thread()
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main else None
            try:
                process.start()
            finally:
                if main:
                    signal.signal(signal.SIGINT, previous or signal.default_int_handler)
            replies.sender_started()
            if self._inbox is not None:  # the last child's: nobody reads it any more
                self._inbox.cancel_join_thread()
                self._inbox.close()
            self._process, self._inbox, self._replies = process, inbox, replies
            unanswered = list(self._waiting.values())
        threading.Thread(
            target=self._read, args=(replies,), name=f"{self._name}-replies", daemon=True
        ).start()
        for answer in unanswered:  # asked of a child that is gone
            if not answer.done():
                answer.set_result(_UNAVAILABLE)

    def _keep_alive(self) -> None:
        delay = 1.0
        while not self._stopping.wait(delay):
            process = self._process
            if process is None:
                continue
            if not _ended(process):
                delay = 1.0
            elif not self._stopping.is_set():
                process.join()  # reaped here only: ``close`` reaps the last one
                logger.error(
                    "the %s process exited (%s); starting it again", self._name, process.exitcode
                )
                self._spawn()
                delay = min(delay * 2, 60.0)  # a process that keeps dying is not restarted hot
        # A child started here dies with this thread (PR_SET_PDEATHSIG counts the thread that
        # started it): this thread ends only once the child has, after ``close``. It waits on
        # the child's sentinel, not by ``join``: ``close`` reaps it (two reapers would race).
        process = self._process
        if process is not None:
            multiprocessing.connection.wait([process.sentinel])

    def ping(self) -> None:
        process = self._process
        if process is None or _ended(process):
            raise RuntimeError(f"the {self._name} process is not running")

    def ask_to_stop(self) -> None:
        """Tell the child to stop after what it already took, without waiting (``close``
        waits)."""
        self._stopping.set()
        with self._lock:
            inbox = self._inbox
        if inbox is not None:
            inbox.put(Stop())

    def close(self) -> None:
        """Stop the child, waiting up to ``stop_timeout`` for it to finish what it took; its
        replies are read to the end (the reader ends by itself)."""
        self.ask_to_stop()
        with self._lock:
            process = self._process
        if process is not None:
            process.join(self._stop_timeout)
            if process.is_alive():
                logger.error("the %s process did not stop in time; ending it", self._name)
                process.terminate()
                process.join(5)


def _ended(process: SpawnProcess) -> bool:
    """Whether the child has exited, without reaping it (``is_alive`` reaps, and one child
    must have one reaper: two race, and the loser takes a reaped child for a live one)."""
    return bool(multiprocessing.connection.wait([process.sentinel], 0))


_UNAVAILABLE = Execution(
    status=RunStatus.FAILED,
    result=b"",
    error_type="ChecksUnavailable",
    error_message="the checks could not be run now; try again in a moment",
    killed_reason=None,
)
