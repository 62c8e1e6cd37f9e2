"""``python -m bot worker``: a Celery worker that executes runs in the sandbox."""

from __future__ import annotations

import logging

from bot.composition import build_services
from bot.config import Settings
from bot.worker.celery_app import (
    CeleryQueue,
    Sweeper,
    make_celery,
    register_worker_task,
    requeue_after,
    sweep_seconds,
)
from bot.worker.executor import RunExecutor

logger = logging.getLogger(__name__)


def run_worker(settings: Settings) -> int:
    if settings.task_queue != "celery":
        logger.error(
            "TASK_QUEUE=local runs tasks inside `python -m bot serve`; "
            "set TASK_QUEUE=celery and CELERY_BROKER_URL to run separate workers"
        )
        return 2
    app = make_celery(settings)
    services = build_services(settings)
    assert services.sandboxes is not None
    queue = CeleryQueue(app)
    services.runs.queue = queue
    register_worker_task(app, RunExecutor(services.runs, services.sandboxes.get()))
    sweeper = Sweeper(services.runs, queue, every=sweep_seconds(), requeue_after=requeue_after())
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
