"""Keeping each run's Slack message in step with the run, from any process: which messages are
behind, who is updating one (a claim, so none is shown twice), and how an update ended (for
good, or for now with a back-off), so no update is retried in a storm or holds up another."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from bot.services.runs import ReplyTarget, RunView
from storage.kinds import RunStatus
from storage.uow import UnitOfWork, UnitOfWorkFactory


@dataclass(frozen=True)
class PendingReply:
    """A run whose message shows an older status than the run has."""

    run: RunView
    target: ReplyTarget
    message_ts: str
    shown_status: RunStatus | None
    attempts: int = 0  # updates that failed for now, in a row


class RunReplies:
    def __init__(self, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def pending(
        self,
        *,
        limit: int = 50,
        now: datetime | None = None,
        exclude_teams: Sequence[str] = (),
        ids: Collection[str] | None = None,
    ) -> list[PendingReply]:
        """Runs whose message is behind (among ``ids`` when given), but for those whose update
        ended for good or waits out a back-off until after ``now``, and those of
        ``exclude_teams``."""
        with self._uow() as uow:
            return self._pending(uow, limit, now, exclude_teams, ids)

    def take(
        self,
        choose: Callable[[list[PendingReply]], list[PendingReply]],
        *,
        limit: int = 50,
        now: datetime | None = None,
        exclude_teams: Sequence[str] = (),
        ids: Collection[str] | None = None,
    ) -> tuple[list[PendingReply], set[str]]:
        """``pending`` and ``claim_all`` in one unit of work: ``choose`` picks which of the
        pending messages to claim; returns those and the ids claimed here."""
        with self._uow() as uow:
            chosen = choose(self._pending(uow, limit, now, exclude_teams, ids))
            claimed = self._claim(
                uow, [(p.run.id, p.shown_status, p.run.status.value) for p in chosen]
            )
            if claimed:
                uow.commit()
            return chosen, claimed

    @staticmethod
    def _pending(
        uow: UnitOfWork,
        limit: int,
        now: datetime | None,
        exclude_teams: Sequence[str],
        ids: Collection[str] | None,
    ) -> list[PendingReply]:
        pending = []
        rows = uow.runs.reply_pending(limit=limit, now=now, exclude_teams=exclude_teams, ids=ids)
        # The files of every ended run among them that wrote some, in one query.
        files = uow.runs.output_files(
            [r.id for r in rows if r.has_files and RunStatus(r.status).final]
        )
        for run in rows:
            assert run.reply_channel and run.reply_thread_ts and run.reply_ts
            pending.append(
                PendingReply(
                    run=RunView.of(run, files.get(run.id, ())),
                    target=ReplyTarget(
                        team_id=run.reply_team or "",
                        enterprise_id=run.reply_enterprise,
                        channel_id=run.reply_channel,
                        thread_ts=run.reply_thread_ts,
                    ),
                    message_ts=run.reply_ts,
                    shown_status=(RunStatus(run.notified_status) if run.notified_status else None),
                    attempts=run.reply_attempts or 0,
                )
            )
        return pending

    @staticmethod
    def _claim(uow: UnitOfWork, claims: Sequence[tuple[str, str | None, str]]) -> set[str]:
        return {
            run_id
            for run_id, shown, showing in claims
            if uow.runs.claim_reply(run_id, shown=shown, showing=showing)
        }

    def claim(self, run_id: str, *, shown: str | None, showing: str) -> bool:
        """Take the job of showing ``showing``; False when another process already did."""
        with self._uow() as uow:
            claimed = uow.runs.claim_reply(run_id, shown=shown, showing=showing)
            uow.commit()
            return claimed

    def claim_all(self, claims: Sequence[tuple[str, str | None, str]]) -> set[str]:
        """``claim`` for each (run id, shown, showing), in one transaction; returns the ids
        claimed here (those another process claimed first are left out)."""
        if not claims:
            return set()
        with self._uow() as uow:
            claimed = self._claim(uow, claims)
            uow.commit()
            return claimed

    def release(self, run_id: str, *, showing: str, back_to: str | None) -> None:
        """Showing failed (Slack unreachable): let a later pass try again."""
        with self._uow() as uow:
            uow.runs.claim_reply(run_id, shown=showing, showing=back_to)
            uow.commit()

    def end(self, run_id: str, *, error: str) -> None:
        """Showing failed for good (message deleted, channel archived, app uninstalled): the
        message is never tried again; ``error`` says why."""
        with self._uow() as uow:
            uow.runs.end_reply(run_id, error=error)
            uow.commit()

    def defer(self, run_id: str, *, showing: str, back_to: str | None, until: datetime) -> None:
        """Showing failed for now: give the claim back, to be tried again from ``until``."""
        with self._uow() as uow:
            uow.runs.defer_reply(run_id, showing=showing, back_to=back_to, until=until)
            uow.commit()

    def recovered(self, run_id: str) -> None:
        with self._uow() as uow:
            uow.runs.reply_recovered(run_id)
            uow.commit()
