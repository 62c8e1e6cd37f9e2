"""A generation's steps, live in its thread: Slack's streaming (``chat.startStream`` with a
plan of ``task_update`` chunks, ``appendStream`` per step, ``stopStream`` at the end) where the
workspace has it, else one message updated in place. Either way the steps arrive in order:
understanding the request, writing the code (each repair round again), running the checks and
how many passed, ready (or failed, or stopped).

It also carries the Stop of a generation: ``GenerationStops`` holds the tasks someone stopped;
the next step of that generation raises ``GenerationStopped`` and nothing is stored."""

from __future__ import annotations

import logging
import threading
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.errors import NotAllowed, NotFound
from bot.services.steps import GenerationStopped, Step, StepEvent
from bot.services.stops import may_stop
from bot.services.views import TaskView
from bot.slack.block_kit import escape_inline
from bot.slack.stop_blocks import STOP_GENERATION_ACTION, stop_button

logger = logging.getLogger(__name__)

# Shown steps, in order: (id, title). WRITING covers repair rounds; CHECKED closes CHECKING.
PLAN: tuple[tuple[str, str], ...] = (
    ("understand", "Understanding the request"),
    ("write", "Writing the code"),
    ("check", "Running its checks"),
    ("ready", "Ready"),
)
_OF_STEP = {
    Step.UNDERSTANDING: "understand",
    Step.WRITING: "write",
    Step.CHECKING: "check",
    Step.CHECKED: "check",
    Step.STORING: "ready",
}
_ICONS = {"pending": "○", "in_progress": "◐", "complete": "●", "error": "✕"}


class GenerationStops:
    """The generations this process is running (task id -> who started it), and those someone
    asked to stop; every generation runs in the process that shows it."""

    def __init__(self) -> None:
        self._running: dict[str, str] = {}
        self._stopped: set[str] = set()
        self._lock = threading.Lock()

    def begin(self, task_id: str, *, started_by: str) -> None:
        with self._lock:
            self._running[task_id] = started_by
            self._stopped.discard(task_id)

    def end(self, task_id: str) -> None:
        with self._lock:
            self._running.pop(task_id, None)
            self._stopped.discard(task_id)

    def request(self, task_id: str, *, by: str, creator: str, admins: Collection[str]) -> None:
        """Ask to stop ``task_id``'s generation: its starter, the task's creator or an admin."""
        with self._lock:
            started_by = self._running.get(task_id)
            if started_by is None:
                raise NotFound(f"Task `{task_id[:8]}` is not generating anything right now.")
            if not may_stop(user_id=by, started_by=started_by, task_creator=creator, admins=admins):
                raise NotAllowed(
                    f"Only <@{started_by}> (who started it), <@{creator}> (who created the "
                    "task) or a Taskbot admin can stop this."
                )
            self._stopped.add(task_id)

    def take(self, task_id: str) -> bool:
        with self._lock:
            return task_id in self._stopped


@dataclass
class _State:
    status: dict[str, str]
    detail: dict[str, str]


class LiveSteps:
    """One generation's progress in ``channel``'s thread ``thread_ts``."""

    def __init__(
        self,
        client: WebClient,
        *,
        channel: str,
        thread_ts: str,
        task_id: str,
        user_id: str,
        team_id: str,
        stops: GenerationStops,
    ) -> None:
        self.client = client
        self.channel, self.thread_ts, self.task_id = channel, thread_ts, task_id
        self.user_id, self.team_id = user_id, team_id
        self.stops = stops
        self.state = _State({i: "pending" for i, _ in PLAN}, {})
        self.stream_ts: str | None = None
        self.message_ts: str | None = None  # the in-place fallback

    # --- chunks and the fallback message ---------------------------------------------------

    def _chunk(self, step_id: str) -> dict[str, Any]:
        title = dict(PLAN)[step_id]
        chunk: dict[str, Any] = {
            "type": "task_update",
            "id": step_id,
            "title": title,
            "status": self.state.status[step_id],
        }
        if self.state.detail.get(step_id):
            chunk["details"] = self.state.detail[step_id]
        return chunk

    def _text(self) -> str:
        lines = []
        for step_id, title in PLAN:
            detail = self.state.detail.get(step_id)
            icon = _ICONS[self.state.status[step_id]]
            # Details can carry an error's words (from the model's code): escaped for mrkdwn.
            lines.append(f"{icon} {title}" + (f": {escape_inline(detail)}" if detail else ""))
        return "\n".join(lines)

    def _blocks(self, *, final: bool) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = [
            {"type": "section", "text": {"type": "mrkdwn", "text": self._text()}}
        ]
        if not final:
            blocks.append(stop_button(action_id=STOP_GENERATION_ACTION, value=self.task_id))
        return blocks

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        self.state.status["understand"] = "in_progress"
        try:
            response = self.client.chat_startStream(
                channel=self.channel,
                thread_ts=self.thread_ts,
                recipient_user_id=self.user_id,
                recipient_team_id=self.team_id,
                task_display_mode="plan",
                chunks=[self._chunk(i) for i, _ in PLAN],
            )
            self.stream_ts = str(response["ts"])
        except SlackApiError as exc:
            logger.info(
                "no streaming here (%s): progress is updated in place", exc.response.get("error")
            )
            self._fallback()

    def _fallback(self) -> None:
        self.stream_ts = None
        try:
            response = self.client.chat_postMessage(
                channel=self.channel,
                thread_ts=self.thread_ts,
                text="Progress",
                blocks=self._blocks(final=False),
            )
            self.message_ts = str(response["ts"])
        except SlackApiError:
            logger.warning("could not show the progress of task %s", self.task_id)

    def _show(self, changed: list[str], *, final: bool = False) -> None:
        if self.stream_ts is not None:
            try:
                if final:
                    self.client.chat_stopStream(
                        channel=self.channel,
                        ts=self.stream_ts,
                        chunks=[self._chunk(i) for i in changed],
                    )
                else:
                    self.client.chat_appendStream(
                        channel=self.channel,
                        ts=self.stream_ts,
                        chunks=[self._chunk(i) for i in changed],
                    )
                return
            except SlackApiError as exc:
                logger.info("streaming failed (%s): updating in place", exc.response.get("error"))
                self._fallback()
        if self.message_ts is not None:
            try:
                self.client.chat_update(
                    channel=self.channel,
                    ts=self.message_ts,
                    text="Progress",
                    blocks=self._blocks(final=final),
                )
            except SlackApiError:
                logger.warning("could not update the progress of task %s", self.task_id)

    def step(self, event: StepEvent) -> None:
        """The service's progress callback: show the step; raise if someone pressed Stop."""
        if self.stops.take(self.task_id):
            raise GenerationStopped(
                "Stopped before it finished: the previous version stays current."
            )
        step_id = _OF_STEP[event.step]
        changed: list[str] = []
        order = [i for i, _ in PLAN]
        for earlier in order[: order.index(step_id)]:
            if self.state.status[earlier] in ("pending", "in_progress"):
                self.state.status[earlier] = "complete"
                changed.append(earlier)
        done = event.step is Step.CHECKED
        self.state.status[step_id] = "complete" if done else "in_progress"
        detail = event.detail + (f" (try {event.attempt + 1})" if event.attempt else "")
        self.state.detail[step_id] = detail
        changed.append(step_id)
        self._show(changed)

    def finish(self, *, ok: bool, detail: str = "") -> None:
        changed = []
        for step_id, _ in PLAN:
            status = self.state.status[step_id]
            if ok and status != "complete":
                self.state.status[step_id] = "complete"
                changed.append(step_id)
            elif not ok and status == "in_progress":
                self.state.status[step_id] = "error"
                self.state.detail[step_id] = detail[:200]
                changed.append(step_id)
        self._show(changed or ["ready"], final=True)


def live_steps(
    client: WebClient, task: TaskView, *, thread_ts: str, user_id: str, stops: GenerationStops
) -> LiveSteps:
    """A generation of ``task`` (started by ``user_id``) shown live in its thread, begun."""
    assert task.channel_id
    stops.begin(task.id, started_by=user_id)
    live = LiveSteps(
        client,
        channel=task.channel_id,
        thread_ts=thread_ts,
        task_id=task.id,
        user_id=user_id,
        team_id=task.team_id,
        stops=stops,
    )
    live.start()
    return live
