"""Generations nobody is working on any more (their process died) are failed, and their
task's root message in Slack says so instead of "generating…" for good: at start and every
minute, in whichever process runs the slow half."""

from __future__ import annotations

import logging
import threading

from bot.services.housekeeping import ABANDONED, TaskHousekeeping
from bot.slack import blocks
from bot.slack.notifier import ClientSource
from bot.slack.outcomes import Uninstalled
from bot.slack.posting import update

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 60.0


class GenerationSweep:
    def __init__(
        self,
        *,
        housekeeping: TaskHousekeeping,
        clients: ClientSource,
        every: float = SWEEP_SECONDS,
    ) -> None:
        self._housekeeping = housekeeping
        self._clients = clients
        self._every = every
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="generation-sweep", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def sweep(self) -> int:
        """Fail what is abandoned and update each one's root message; how many."""
        failed = self._housekeeping.fail_abandoned_tasks()
        for task in failed:
            if not (task.channel_id and task.thread_ts):
                continue  # never announced in Slack (the CLI, the API)
            try:
                client = self._clients.for_team(task.team_id, task.enterprise_id)
                update(client, task.channel_id, task.thread_ts, blocks.task_failed(task, ABANDONED))
            except Uninstalled:
                logger.info("task %s's workspace is gone; its root message stays", task.id[:8])
            except Exception as exc:  # one message that cannot be updated stops no other
                logger.warning("could not show task %s failed in Slack: %s", task.id[:8], exc)
        if failed:
            logger.warning("%d abandoned generation(s) marked failed", len(failed))
        return len(failed)

    def _loop(self) -> None:
        while True:
            try:
                self.sweep()
            except Exception:
                logger.exception("could not sweep abandoned generations")
            if self._stop.wait(self._every):
                return
