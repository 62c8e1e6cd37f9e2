"""Runs due schedules: every process with a Slack side looks every ``every`` seconds; the
database lease (``ScheduleService.claim_due``) gives each tick to exactly one of them. A won
tick is an ordinary run of the task's pinned (else current) version, posted in its thread as
its owner's; an ended run is counted once, and the third failure in a row pauses the schedule
and tells its owner in a direct message."""

from __future__ import annotations

import logging
import threading
from datetime import datetime

from slack_sdk.errors import SlackApiError

from bot.services.access import check_gate, check_task_access
from bot.services.errors import ServiceError
from bot.services.schedules import PAUSE_AFTER, Counted, Tick
from bot.slack.flows import SlackFlows
from bot.slack.messages import Origin
from bot.slack.notifier import ClientSource
from bot.slack.outcomes import Uninstalled
from storage.errors import StorageUnavailable

logger = logging.getLogger(__name__)


class ScheduleTicker:
    def __init__(self, flows: SlackFlows, clients: ClientSource, *, every: float) -> None:
        self._flows = flows
        self._clients = clients
        self._schedules = flows.services.schedules
        self._every = every
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._every <= 0 or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._loop, name="schedule-ticker", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except StorageUnavailable:
                logger.warning("schedules: the database is unreachable; trying again later")
            except Exception:
                logger.exception("schedules: a tick failed")
            self._stop.wait(self._every)

    def tick(self, *, now: datetime | None = None) -> list[str]:
        """Count the scheduled runs that ended, then run every tick this process wins (as of
        ``now``, the clock's unless given); returns the ids of the runs it started."""
        for counted in self._schedules.count_ended():
            if counted.paused:
                self._tell_paused(
                    counted, reason=f"its run `{counted.run_id[:8]}` {counted.status}"
                )
        started: list[str] = []
        for tick in self._schedules.claim_due(now=now):
            run_id = self._run(tick)
            if run_id is not None:
                started.append(run_id)
        return started

    def _run(self, tick: Tick) -> str | None:
        schedule = tick.schedule
        try:
            client = self._clients.for_team(schedule.team_id, schedule.enterprise_id)
        except Uninstalled:
            logger.warning("schedule %s: its workspace has no installation", schedule.id)
            return None
        try:
            task = self._flows.services.tasks.get(schedule.task_id, team_id=schedule.team_id)
            origin = Origin(
                schedule.team_id, schedule.enterprise_id, task.channel_id or "", schedule.owner
            )
            check_gate(
                channel_id=origin.channel_id,
                user_id=origin.user_id,
                allowed_channels=self._flows.allowed_channels,
                allowed_users=self._flows.allowed_users,
            )
            check_task_access(
                task, team_id=origin.team_id, channel_id=origin.channel_id, user_id=origin.user_id
            )
            run_id, _ = self._flows.start_run(
                client,
                origin,
                task=task,
                data=tick.input_data,
                name=schedule.input_name,
                version=task.trigger_version,
            )
        except (ServiceError, SlackApiError) as exc:
            reason = str(exc) if isinstance(exc, ServiceError) else exc.response.get("error")
            logger.warning("schedule %s could not start a run: %s", schedule.id, reason)
            counted = self._schedules.could_not_start(schedule.id)
            if counted is not None and counted.paused:
                self._tell_paused(counted, reason=f"it could not start: {reason}")
            return None
        self._schedules.started(schedule.id, run_id=run_id)
        return run_id

    def _tell_paused(self, counted: Counted, *, reason: str) -> None:
        schedule = counted.schedule
        text = (
            f":double_vertical_bar: Your schedule of task `{schedule.task_id[:8]}` "
            f"({schedule.words}) is paused: it failed {PAUSE_AFTER} times in a row; last, "
            f"{reason}. Fix the task, then `/task schedule {schedule.task_id[:8]} ...` again."
        )
        try:
            client = self._clients.for_team(schedule.team_id, schedule.enterprise_id)
            client.chat_postMessage(channel=schedule.owner, text=text)
        except (SlackApiError, Uninstalled) as exc:
            logger.warning("could not tell %s their schedule paused: %s", schedule.owner, exc)
