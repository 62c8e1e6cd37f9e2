"""The scaled-out queue: Celery on Redis. Web processes send run ids; workers execute them.

Late acknowledgement: a message is acknowledged only after its run is recorded, so a worker
killed mid-run leaves the message to be delivered again. Delivery twice never records twice:
a run is claimed once (queued -> running) in the database, and a redelivered message for a run
still ``running`` waits until that run ends or its worker is presumed dead (then it is failed).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from datetime import timedelta
from typing import Any

from celery import Celery
from kombu.exceptions import ChannelError

from bot.config import Settings
from bot.services.container import Executor
from bot.services.runs import RunRecords
from bot.worker.local import local_worker_alive
from storage.models import RunStatus

logger = logging.getLogger(__name__)

TASK_NAME = "taskbot.execute_run"
QUEUE_NAME = "taskbot.runs"
SWEEP_SECONDS = 15.0


def _env_seconds(name: str) -> float | None:
    """An optional interval override (drills and tests shorten them); None when unset or bad."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        logger.warning("%s=%r is not a number of seconds; using the default", name, raw)
        return None
    return value if value > 0 else None


def sweep_seconds() -> float:
    """How often each worker sweeps (``TASKBOT_SWEEP_SECONDS``, default 15 s)."""
    return _env_seconds("TASKBOT_SWEEP_SECONDS") or SWEEP_SECONDS


def requeue_after() -> timedelta | None:
    """How long a run may stay queued before it is sent again (``TASKBOT_REQUEUE_AFTER_SECONDS``;
    None: half of ``RunService.stale_after``)."""
    seconds = _env_seconds("TASKBOT_REQUEUE_AFTER_SECONDS")
    return None if seconds is None else timedelta(seconds=seconds)


def make_celery(settings: Settings) -> Celery:
    app = Celery("taskbot", broker=settings.celery_broker_url)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_default_queue=QUEUE_NAME,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            # Unacknowledged messages come back after this long (a worker died holding them).
            "visibility_timeout": int(settings.sandbox_wall_seconds) + 120,
        },
        worker_hijack_root_logger=False,
    )
    return app


class CeleryQueue:
    def __init__(self, app: Celery) -> None:
        self.app = app

    def submit(self, run_id: str) -> None:
        self.app.send_task(TASK_NAME, args=[run_id], queue=QUEUE_NAME)

    def waiting(self) -> int:
        """How many messages wait in the broker's queue (0 when the broker forgot the queue)."""
        with self.app.connection_for_write() as conn:
            try:
                declared = conn.default_channel.queue_declare(queue=QUEUE_NAME, passive=True)
            except ChannelError:
                return 0  # e.g. Redis restarted empty: no queue until a worker declares it
            return int(declared.message_count)

    def ping(self) -> None:
        """Raise when the broker cannot be reached."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)


def register_worker_task(app: Celery, runs: RunRecords, executor: Executor) -> None:
    @app.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def execute_run(self: Any, run_id: str) -> None:
        # A message is a free slot: it takes the next queued run in fair order (users in
        # turn), which may not be ``run_id``; ``run_id``'s own message then takes another.
        if executor.execute_next() is not None:
            return
        view = runs.get(run_id)
        if view.status is RunStatus.RUNNING and view.started_at is not None:
            # Delivered again while another worker holds it: wait for it to end, or fail it
            # once that worker is overdue.
            if runs.fail_abandoned(worker_alive=local_worker_alive):
                return
            raise self.retry(countdown=min(30.0, runs.stale_after.total_seconds() / 4))


class Sweeper:
    """In each worker: fail runs whose worker died, re-send queued runs whose message was lost.

    A queued run only waiting behind a backlog is not re-sent: messages are re-sent only while
    the broker holds fewer messages than the database has queued runs (some were lost: the
    broker restarted empty, a publish failed, a task failed before claiming its run), and a
    run this sweeper re-sent is not re-sent again before ``requeue_after`` has passed.
    """

    def __init__(
        self,
        runs: RunRecords,
        queue: CeleryQueue,
        *,
        every: float = SWEEP_SECONDS,
        requeue_after: timedelta | None = None,
    ) -> None:
        self.runs = runs
        self.queue = queue
        self.every = every
        self.requeue_after = requeue_after or runs.stale_after / 2
        self._resent: dict[str, float] = {}  # run id -> when this sweeper last re-sent it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskbot-sweeper", daemon=True)

    def sweep(self) -> None:
        failed = self.runs.fail_abandoned(worker_alive=local_worker_alive)
        if failed:
            logger.warning("failed %d runs whose worker died: %s", len(failed), failed)
        overdue = self.runs.overdue_queued(older_than=self.requeue_after)
        self._resent = {k: v for k, v in self._resent.items() if k in set(overdue)}
        if not overdue:
            return
        waiting = self.queue.waiting()
        queued = len(self.runs.queued_ids())
        if waiting >= queued:
            logger.info(
                "%d queued runs, %d messages waiting: a backlog, nothing lost", queued, waiting
            )
            return
        now, again = time.monotonic(), self.requeue_after.total_seconds()
        for run_id in overdue:
            if now - self._resent.get(run_id, now - again) < again:
                continue
            logger.info("re-sending queued run %s", run_id)
            self.queue.submit(run_id)
            self._resent[run_id] = now

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            try:
                self.sweep()
            except Exception:
                logger.exception("sweep failed; trying again in %.0f s", self.every)

    def start(self) -> None:
        self.sweep()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
