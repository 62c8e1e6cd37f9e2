"""The default queue: a pool of threads in this process, one per sandbox slot."""

from __future__ import annotations

import logging
import os
import socket
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from bot.services.runs import RunOutcome, RunRecords
from bot.worker.executor import RunExecutor
from bot.worker.identity import process_start_ticks

logger = logging.getLogger(__name__)


def local_worker_alive(worker: str) -> bool:
    """Whether a worker id (``host:pid:start``) names a live process on this host."""
    host, _, rest = worker.partition(":")
    pid, _, start = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return True  # another host's worker: not ours to judge
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return not start or process_start_ticks(pid) == start


class LocalPool:
    """``submit(run_id)`` runs it on one of ``concurrency`` threads; results go to the database."""

    def __init__(self, executor: RunExecutor, *, concurrency: int) -> None:
        self.executor = executor
        # Two threads per sandbox slot: while one records a finished run in the database, the
        # other already has the slot (Sandbox.run blocks until a slot is free).
        self._pool = ThreadPoolExecutor(
            max_workers=2 * concurrency, thread_name_prefix="taskbot-run"
        )
        self._pending: set[Future[None]] = set()
        self._given: set[str] = set()  # run ids handed to this pool and not yet taken
        self._lock = threading.Lock()
        self._closing = threading.Event()

    def submit(self, run_id: str) -> None:
        """One more job for the pool; each job takes the next of this pool's queued runs in
        fair order (users in turn, ``bot.services.fairness``), not necessarily ``run_id``."""
        with self._lock:
            self._given.add(run_id)
        future = self._pool.submit(self._execute, run_id)
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)

    def _done(self, future: Future[None]) -> None:
        with self._lock:
            self._pending.discard(future)

    def _execute(self, run_id: str) -> None:
        """Take this pool's queued runs in fair order until none is left to take (so a job
        that failed, or one whose run another job took, strands nothing). Each outcome is
        recorded with the claim of the next run, in one transaction."""
        ended: tuple[str, RunOutcome] | None = None
        try:
            while not self._closing.is_set():  # closing: what is still queued stays queued
                with self._lock:
                    given = set(self._given)
                step = self.executor.step(among=given, ended=ended)
                ended = None  # recorded by that step
                with self._lock:
                    if step is None:  # none of them could be taken: ended, or taken elsewhere
                        self._given -= given
                        return
                    self._given.discard(step[0])
                ended = step
        except Exception:
            logger.exception("the local pool could not take a run (after %s)", run_id)
        finally:
            if ended is not None:  # a step failed, or closing: recorded here (or again: once)
                try:
                    self.executor.record(*ended)
                except Exception:
                    logger.exception("the outcome of run %s could not be stored", ended[0])

    def recover(self, runs: RunRecords) -> tuple[list[str], list[str]]:
        """After a restart: fail runs a dead process left running, resubmit the queued ones."""
        failed = runs.fail_abandoned(worker_alive=local_worker_alive)
        queued = runs.queued_ids()
        for run_id in queued:
            self.submit(run_id)
        if failed or queued:
            logger.info(
                "recovered: %d abandoned runs failed, %d queued runs resubmitted",
                len(failed),
                len(queued),
            )
        return failed, queued

    def wait_idle(self, timeout: float | None = None) -> bool:
        with self._lock:
            pending = list(self._pending)
        for future in pending:
            try:
                future.result(timeout=timeout)
            except TimeoutError:
                return False
        return True

    def close(self) -> None:
        """Finish the runs started, start no other: queued runs stay queued in the database,
        for the next start (``recover``), however long the queue."""
        self._closing.set()
        self._pool.shutdown(wait=True, cancel_futures=True)
