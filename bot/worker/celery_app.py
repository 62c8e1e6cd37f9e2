"""The scaled-out queue: Celery on Redis. Web processes send run ids; workers execute them.

Late acknowledgement: a message is acknowledged only after its run is recorded, so a worker
killed mid-run leaves the message to be delivered again. Delivery twice never records twice:
a run is claimed once (queued -> running) in the database, and a redelivered message for a run
still ``running`` waits until that run ends or its worker is presumed dead (then it is failed).

Late acknowledgement does not cover every message: kombu's Redis transport takes a message off
the list with BRPOP and only then records it as unacknowledged, so a worker that dies in
between loses it, and so does a worker killed with a BRPOP pending (Redis answers a connection
the kernel has not closed yet: it stays open tens of milliseconds after the process is reaped).
The database knows the run is queued; the sweeper compares it with what the broker holds.
"""

from __future__ import annotations

import base64
import json
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
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)

TASK_NAME = "taskbot.execute_run"
QUEUE_NAME = "taskbot.runs"
SWEEP_SECONDS = 15.0
# A queued run whose message the broker does not hold is re-sent once it is this old: the web
# records a run, posts its Slack message, then sends it (a slow Slack delays the send).
LOST_AFTER = timedelta(seconds=10)


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
    None: ``LOST_AFTER`` when the broker says what it holds, else half of
    ``RunService.stale_after``)."""
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

    def held(self) -> set[str] | None:
        """The run ids the broker holds: waiting in the queue (any priority) or delivered and
        not acknowledged, read in one transaction; None when the broker cannot say (not Redis).
        """
        with self.app.connection_for_write() as conn:
            channel = conn.default_channel
            client = getattr(channel, "client", None)
            unacked = getattr(channel, "unacked_key", None)
            if client is None or not isinstance(unacked, str) or not hasattr(channel, "_q_for_pri"):
                return None
            if getattr(channel, "global_keyprefix", ""):
                return None  # its client would not prefix LRANGE and HVALS
            lists = [channel._q_for_pri(QUEUE_NAME, p) for p in channel.priority_steps]
            with client.pipeline(transaction=True) as pipe:
                for key in dict.fromkeys(lists):
                    pipe.lrange(key, 0, -1)
                pipe.hvals(unacked)
                *waiting, delivered = pipe.execute()
        found = [_run_id(raw) for items in waiting for raw in items]
        found += [_run_id(raw, delivered=True) for raw in delivered]
        return {run_id for run_id in found if run_id is not None}

    def ping(self) -> None:
        """Raise when the broker cannot be reached."""
        with self.app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=2)


def _run_id(raw: bytes | str, *, delivered: bool = False) -> str | None:
    """The run id a raw kombu Redis message carries (``delivered``: an unacked entry, which is
    ``[message, exchange, routing_key]``); None for anything else."""
    try:
        message = json.loads(raw)
        if delivered:
            message = message[0]
        if message["headers"].get("task") != TASK_NAME:
            return None
        body = message["body"]
        if message["properties"].get("body_encoding") == "base64":
            body = base64.b64decode(body)
        args = json.loads(body)[0]
        return str(args[0])
    except (ValueError, TypeError, KeyError, IndexError):
        return None


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

    A queued run is re-sent when the broker holds no message for it (waiting or delivered and
    unacknowledged) once it has been queued ``requeue_after`` (default ``LOST_AFTER``): lost by
    a worker that died holding it, by a broker that restarted empty, by a failed publish. The
    broker is read before the database, so a run queued meanwhile is too young to be re-sent.

    Where the broker cannot say what it holds, a queued run only waiting behind a backlog is
    not re-sent: messages are re-sent only while the broker holds fewer messages than the
    database has queued runs, after half ``stale_after``, and a run this sweeper re-sent is not
    re-sent again before that has passed.
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
        self.lost_after = requeue_after or LOST_AFTER
        self.requeue_after = requeue_after or runs.stale_after / 2
        self._resent: dict[str, float] = {}  # run id -> when this sweeper last re-sent it
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskbot-sweeper", daemon=True)

    def sweep(self) -> None:
        failed = self.runs.fail_abandoned(worker_alive=local_worker_alive)
        if failed:
            logger.warning("failed %d runs whose worker died: %s", len(failed), failed)
        if not self.runs.overdue_queued(older_than=self.lost_after):
            return  # nothing has waited long enough to be lost: the broker is not read
        held = self.queue.held()  # before the database: a run queued meanwhile is too young
        if held is not None:
            lost = [
                r for r in self.runs.overdue_queued(older_than=self.lost_after) if r not in held
            ]
            for run_id in lost:
                logger.warning(
                    "re-sending queued run %s: the broker holds no message for it", run_id
                )
                self.queue.submit(run_id)
            return
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
