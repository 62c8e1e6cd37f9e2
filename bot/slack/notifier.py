"""Keeps each run's Slack message in step with the run, from any web process.

One thread finds the messages that are behind and claims each (so no process shows one twice);
a small pool makes the calls, so a slow or rate-limited workspace holds up only its own runs.
An update Slack refuses for good (message deleted, channel archived, token revoked, app
uninstalled) is recorded and never tried again; one that failed for now backs off, in the
database, so it leaves the next pass's window free for newer runs."""

from __future__ import annotations

import heapq
import logging
import threading
import time
from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.oauth.installation_store import InstallationStore

from bot.services.events import RunSignal
from bot.services.replies import PendingReply, RunReplies
from bot.services.run_errors import RunErrorSharing
from bot.slack import blocks
from bot.slack.files import Upload, upload_to_thread
from bot.slack.keepalive import KeepAliveWebClient
from bot.slack.outcomes import Uninstalled, classify
from bot.slack.tracked import TrackedPool
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)

SWEEP_SECONDS = 2.0  # the safety net: events wake the watcher at once
# A run is shown "running" only once it has run this long: most runs end sooner, and their
# message goes from queued straight to the outcome (one update less, against Slack's limits).
RUNNING_SHOWN_AFTER = 1.0
MAX_ATTEMPTS = 8  # failures for now in a row before an update is given up (about 4 minutes)
BACKOFF_CAP_SECONDS = 120.0


class ClientSource:
    """The Web API client for a workspace: the one bot token, or the installation's."""

    def __init__(self, *, default: WebClient, installations: InstallationStore | None) -> None:
        self.default = default
        self.installations = installations
        self._revoked: set[tuple[str | None, str]] = set()

    def revoke(self, team_id: str, enterprise_id: str | None) -> None:
        """Slack said the app was uninstalled (or its bot token revoked) there."""
        if self.installations is None:  # with installations, Bolt deleted the installation
            self._revoked.add((enterprise_id, team_id))

    def for_team(
        self, team_id: str, enterprise_id: str | None, *, patient: bool = True
    ) -> WebClient:
        """``patient`` clients wait out a 429 (Retry-After); others raise it at once."""
        if (enterprise_id, team_id) in self._revoked:
            raise Uninstalled(f"the app was uninstalled from team {team_id}")
        token = self.default.token
        if self.installations is not None:
            bot = self.installations.find_bot(enterprise_id=enterprise_id, team_id=team_id)
            if bot is None or not bot.bot_token:
                raise Uninstalled(f"no installation for team {team_id}")
            token = bot.bot_token
        elif patient:
            return self.default
        handlers = [
            h
            for h in self.default.retry_handlers or []
            if patient or not isinstance(h, RateLimitErrorRetryHandler)
        ]
        return KeepAliveWebClient(
            token=token, base_url=self.default.base_url, retry_handlers=handlers
        )


class RunWatcher:
    """Woken by events: a run's change (``signal``), a run queued here, an update done, a
    back-off ending. ``interval`` is only the safety net's sweep: changes nobody announced
    (a worker on another machine without the Redis relay, a lost event) are found by then."""

    def __init__(
        self,
        *,
        replies: RunReplies,
        clients: ClientSource,
        signal: RunSignal,
        interval: float = SWEEP_SECONDS,
        workers: int = 8,
        run_errors: RunErrorSharing = RunErrorSharing.SEND,
        running_after: float = RUNNING_SHOWN_AFTER,
    ) -> None:
        self.run_errors = run_errors
        self.running_after = running_after
        self.replies = replies
        self.clients = clients
        self.interval = interval
        # When deferred looks come due (monotonic), a heap of (when, run id): a run is shown
        # running once it has run long enough, and that look reads that run only.
        self._due: list[tuple[float, str]] = []
        self._due_runs: set[str] = set()  # runs with a look in ``_due``
        self._everywhere: list[float] = []  # when looks everywhere come due, a heap
        self._swept = time.monotonic()  # the last look everywhere
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="taskbot-run-watcher", daemon=True)
        self._workers = workers
        self._pool = TrackedPool(max_workers=workers, thread_name_prefix="taskbot-update")
        self._lock = threading.Lock()
        self._inflight: dict[str, PendingReply] = {}
        self._behind: set[str] = set()  # runs that moved on while their update was in flight
        self._full = False  # a pass stopped claiming for want of room in the pool
        self._held: dict[str, float] = {}  # workspace -> when its rate limit ends (monotonic)
        # What woke the watcher: runs that changed (looked up by id), or anything else, which
        # looks at every message that is behind (None).
        self._changed: set[str] | None = None
        signal.subscribe(self._run_changed, on_start=self._run_started)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self._pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            left = list(self._inflight.values())
        for pending in left:  # claimed but never started: a later process shows them
            self.replies.release(
                pending.run.id, showing=pending.run.status, back_to=pending.shown_status
            )

    def wait_idle(self, timeout: float) -> bool:
        """Block until no message update is in flight (tests drain the app with this)."""
        return self._pool.wait_idle(timeout)

    def _run_changed(self, run_id: str) -> None:
        with self._lock:
            if self._changed is not None:
                self._changed.add(run_id)
        self._wake.set()

    def _run_started(self, run_id: str) -> None:
        """A run started in this process: its message shows "running" only once it has run
        ``running_after`` (most runs end sooner: their end is the next change to show)."""
        with self._lock:
            self._look_at_in(run_id, self.running_after)
        self._wake.set()  # the loop's next wait counts it

    def _look_everywhere(self) -> None:
        with self._lock:
            self._changed = None
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self._next_wait())
            now = time.monotonic()
            with self._lock:
                self._wake.clear()
                due = self._take_due(now)
                ids = self._changed
                self._changed = set()
                # The safety net's sweep, however busy: every ``interval`` it looks everywhere.
                if ids is None or due is None or now - self._swept >= self.interval:
                    ids = None
                    self._swept = now
                else:
                    ids |= due
            try:
                self.pass_once(ids)
            except Exception:
                logger.exception("updating run messages failed; trying again")

    def _take_due(self, now: float) -> set[str] | None:
        """(Under the lock.) The runs whose deferred look is due; None to look everywhere."""
        ids: set[str] = set()
        while self._due and self._due[0][0] <= now:
            _, run_id = heapq.heappop(self._due)
            if run_id in self._due_runs:  # not shown meanwhile
                self._due_runs.discard(run_id)
                ids.add(run_id)
        if self._everywhere and self._everywhere[0] <= now:
            while self._everywhere and self._everywhere[0] <= now:
                heapq.heappop(self._everywhere)
            return None
        return ids

    def _next_wait(self) -> float:
        now = time.monotonic()
        with self._lock:
            until = [self._swept + self.interval]
            if self._due:
                until.append(self._due[0][0])
            if self._everywhere:
                until.append(self._everywhere[0])
        return max(0.0, min(until) - now)

    def _due_in(self, delay: float) -> None:
        """Look everywhere in ``delay`` seconds (a back-off or a rate limit ends)."""
        with self._lock:
            heapq.heappush(self._everywhere, time.monotonic() + delay)
        self._wake.set()

    def _look_at_in(self, run_id: str, delay: float) -> None:
        """(Under the lock.) Look at ``run_id`` in ``delay`` seconds, unless a look is due."""
        if run_id not in self._due_runs:
            self._due_runs.add(run_id)
            heapq.heappush(self._due, (time.monotonic() + delay, run_id))

    def pass_once(self, ids: set[str] | None = None) -> int:
        """Claim every message that is behind (of the runs ``ids`` only, when given), in one
        transaction, and hand each to the pool; returns how many."""
        if ids is not None and not ids:
            return 0
        now = time.monotonic()
        with self._lock:
            self._held = {team: until for team, until in self._held.items() if until > now}
            held = list(self._held)
            room = self._workers - len(self._inflight)
        wall = datetime.now(UTC)

        def choose(pending: list[PendingReply]) -> list[PendingReply]:
            chosen: list[PendingReply] = []
            for reply in pending:
                wait = self._too_soon(reply, wall)
                if wait > 0:  # looked at again when it has run long enough (or when it ends)
                    with self._lock:  # no wake: the loop's next wait already counts it
                        self._look_at_in(reply.run.id, wait)
                    continue
                with self._lock:
                    if reply.run.id in self._inflight:
                        # Its run moved on while its message was being updated: look again then.
                        self._behind.add(reply.run.id)
                        continue
                if len(chosen) >= room:  # claim no more than the pool can start now: a promise
                    with self._lock:
                        self._full = True
                    break
                chosen.append(reply)
            return chosen

        chosen, claimed = self.replies.take(choose, now=wall, exclude_teams=held, ids=ids)
        started = 0
        for pending in chosen:
            if pending.run.id not in claimed:
                continue  # another process shows it
            with self._lock:
                self._inflight[pending.run.id] = pending
                if pending.run.final:  # no later look at it: it has no later status
                    self._due_runs.discard(pending.run.id)
            self._pool.submit(self._attempt, pending)
            started += 1
        return started

    def _too_soon(self, pending: PendingReply, now: datetime) -> float:
        """Seconds until a running run is shown as running; 0 when it is to be shown now."""
        run = pending.run
        if run.status is not RunStatus.RUNNING or run.started_at is None:
            return 0.0
        return max(0.0, self.running_after - (now - run.started_at).total_seconds())

    def _attempt(self, pending: PendingReply) -> None:
        run = pending.run
        try:
            self._show(pending)
            if pending.attempts:
                self.replies.recovered(run.id)
        except Exception as exc:
            self._failed(pending, exc)
        finally:
            with self._lock:
                self._inflight.pop(run.id, None)
                # Look again only if this run moved on meanwhile, or a pass left runs out for
                # want of room; every other change wakes the watcher by its own event.
                behind, full = run.id in self._behind, self._full
                self._behind.discard(run.id)
                self._full = False
            if full:
                self._look_everywhere()
            elif behind:
                self._run_changed(run.id)

    def _failed(self, pending: PendingReply, exc: Exception) -> None:
        run, target = pending.run, pending.target
        failure = classify(exc)
        if failure.permanent:
            logger.warning(
                "the message of run %s cannot be updated (%s); it will not be tried again",
                run.id,
                failure.error,
            )
            self.replies.end(run.id, error=failure.error)
            return
        if not isinstance(exc, SlackApiError):
            logger.error("could not update the message of run %s", run.id, exc_info=exc)
        if pending.attempts + 1 >= MAX_ATTEMPTS:
            logger.warning("giving up the message of run %s (%s)", run.id, failure.error)
            self.replies.end(run.id, error=f"gave_up:{failure.error}")
            return
        delay = min(BACKOFF_CAP_SECONDS, 2.0**pending.attempts)
        if failure.retry_after is not None:
            delay = failure.retry_after
            with self._lock:
                self._held[target.team_id] = time.monotonic() + delay
        logger.warning(
            "the message of run %s: Slack answered %s; trying again in %.0f s",
            run.id,
            failure.error,
            delay,
        )
        self.replies.defer(
            run.id,
            showing=run.status,
            back_to=pending.shown_status,
            until=datetime.now(UTC) + timedelta(seconds=delay),
        )
        self._due_in(delay)

    def _show(self, pending: PendingReply) -> None:
        run, target = pending.run, pending.target
        client = self.clients.for_team(target.team_id, target.enterprise_id, patient=False)
        message = blocks.run_message(run, run_errors=self.run_errors)
        client.chat_update(
            channel=target.channel_id,
            ts=pending.message_ts,
            text=message.text,
            blocks=message.blocks,
            attachments=message.attachments,
        )
        if not run.final:
            return
        uploads = [Upload(f.name.replace("/", "_"), f.content) for f in run.files]
        attachment = (
            blocks.render_result(run).attachment if run.status is RunStatus.SUCCEEDED else None
        )
        if attachment is not None:
            uploads.insert(0, Upload(*attachment))
        try:
            upload_to_thread(
                self.clients.for_team(target.team_id, target.enterprise_id),
                channel=target.channel_id,
                thread_ts=target.thread_ts,
                uploads=uploads,
                comment=f"Files from run `{run.id[:8]}`",
            )
        except Exception:
            # The message already shows the outcome; a retry would post it (and any files that
            # did go up) again, so the failure is logged, not retried.
            logger.exception("could not upload the files of run %s", run.id)
