"""Keeps each run's Slack message in step with the run, from any web process."""

from __future__ import annotations

import logging
import threading

from slack_sdk import WebClient
from slack_sdk.oauth.installation_store import InstallationStore

from bot.services.runs import PendingReply, RunService
from bot.slack import blocks
from bot.slack.files import Upload, upload_to_thread

logger = logging.getLogger(__name__)


class ClientSource:
    """The Web API client for a workspace: the one bot token, or the installation's."""

    def __init__(self, *, default: WebClient, installations: InstallationStore | None) -> None:
        self.default = default
        self.installations = installations

    def for_team(self, team_id: str, enterprise_id: str | None) -> WebClient:
        if self.installations is None:
            return self.default
        bot = self.installations.find_bot(enterprise_id=enterprise_id, team_id=team_id)
        if bot is None or not bot.bot_token:
            raise LookupError(f"no installation for team {team_id}")
        return WebClient(
            token=bot.bot_token,
            base_url=self.default.base_url,
            retry_handlers=list(self.default.retry_handlers or []),
        )


class RunWatcher:
    """Polls for runs whose message is behind; one process claims each update (no doubles)."""

    def __init__(self, *, runs: RunService, clients: ClientSource, interval: float = 0.2) -> None:
        self.runs = runs
        self.clients = clients
        self.interval = interval
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskbot-run-watcher", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)

    def poke(self) -> None:
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            try:
                self.pass_once()
            except Exception:
                logger.exception("updating run messages failed; trying again")

    def pass_once(self) -> int:
        shown = 0
        for pending in self.runs.pending_replies():
            run = pending.run
            if not self.runs.claim_reply(run.id, shown=pending.shown_status, showing=run.status):
                continue
            try:
                self._show(pending)
                shown += 1
            except Exception:
                logger.exception("could not update the message of run %s", run.id)
                self.runs.release_reply(run.id, showing=run.status, back_to=pending.shown_status)
        return shown

    def _show(self, pending: PendingReply) -> None:
        run, target = pending.run, pending.target
        client = self.clients.for_team(target.team_id, target.enterprise_id)
        message = blocks.run_message(run)
        client.chat_update(
            channel=target.channel_id,
            ts=pending.message_ts,
            text=message.text,
            blocks=message.blocks,
        )
        if not run.final:
            return
        uploads = [Upload(f.name.replace("/", "_"), f.content) for f in run.files]
        attachment = blocks.render_result(run).attachment if run.status == "succeeded" else None
        if attachment is not None:
            uploads.insert(0, Upload(*attachment))
        try:
            upload_to_thread(
                client,
                channel=target.channel_id,
                thread_ts=target.thread_ts,
                uploads=uploads,
                comment=f"Files from run `{run.id[:8]}`",
            )
        except Exception:
            # The message already shows the outcome; a retry would post it (and any files that
            # did go up) again, so the failure is logged, not retried.
            logger.exception("could not upload the files of run %s", run.id)
