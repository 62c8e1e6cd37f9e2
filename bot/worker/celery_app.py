"""The scaled-out queue: Celery on Redis. Web processes send run ids; workers execute them.

Late acknowledgement: a message is acknowledged only after its run is recorded, so a worker
killed mid-run leaves the message to be delivered again. Delivery twice never records twice:
a run is claimed once (queued -> running) in the database, and a redelivered message for a run
still ``running`` waits until that run ends or its worker is presumed dead (then it is failed).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from celery import Celery

from bot.config import Settings
from bot.services.runs import RunService
from bot.worker.executor import RunExecutor
from bot.worker.local import local_worker_alive

logger = logging.getLogger(__name__)

TASK_NAME = "taskbot.execute_run"
QUEUE_NAME = "taskbot.runs"
SWEEP_SECONDS = 15.0


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

    def ping(self) -> None:
        """Raise when the broker cannot be reached."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)


def register_worker_task(app: Celery, executor: RunExecutor) -> None:
    runs = executor.runs

    @app.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def execute_run(self: Any, run_id: str) -> None:
        executor.execute(run_id)
        view = runs.get(run_id)
        if view.status == "running" and view.started_at is not None:
            # Delivered again while another worker holds it: wait for it to end, or fail it
            # once that worker is overdue.
            if runs.fail_abandoned(worker_alive=local_worker_alive):
                return
            raise self.retry(countdown=min(30.0, runs.stale_after.total_seconds() / 4))


class Sweeper:
    """In each worker: fail runs whose worker died, re-send queued runs whose message was lost."""

    def __init__(
        self, runs: RunService, queue: CeleryQueue, *, every: float = SWEEP_SECONDS
    ) -> None:
        self.runs = runs
        self.queue = queue
        self.every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskbot-sweeper", daemon=True)

    def sweep(self) -> None:
        failed = self.runs.fail_abandoned(worker_alive=local_worker_alive)
        if failed:
            logger.warning("failed %d runs whose worker died: %s", len(failed), failed)
        for run_id in self.runs.overdue_queued(older_than=self.runs.stale_after / 2):
            logger.info("re-sending queued run %s", run_id)
            self.queue.submit(run_id)

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
