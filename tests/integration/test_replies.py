"""Which run messages the watcher picks up, on SQLite and PostgreSQL: behind, not ended for
good, not backing off, not in a rate-limited workspace, claimed once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bot.composition import build_services
from bot.config import Settings
from bot.services.replies import RunReplies
from bot.services.runs import ReplyTarget
from storage import migrate
from storage.db import make_engine
from storage.kinds import RunStatus
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

CODE = "def run(input_path):\n    return 1\n"


def test_pending_replies_skip_ended_deferred_and_held_updates(db_url: str) -> None:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    model = FakeCodeGenerator()
    services = build_services(
        Settings(database_url=db_url), engine=engine, generator=model, runner="none"
    )
    try:
        model.queue(answer_json(code=CODE))
        task = services.tasks.create(
            description="d", task_type="passthrough", requested_by="U1", source="cli"
        ).task
        replies, ids = RunReplies(services.uow), []
        for team in ("T1", "T1", "T1", "T2"):
            run = services.runs.request(
                task.id, requested_by="U1", input_data=b"x", input_name="x.txt", submit=False,
                reply=ReplyTarget(team, None, "C1", "1.1"),
            )  # fmt: skip
            services.runs.attach_reply(
                run.id, message_ts=f"2.{len(ids)}", shown_status=RunStatus.RUNNING
            )
            ids.append(run.id)
        now = datetime.now(UTC)
        assert [p.run.id for p in replies.pending(now=now)] == ids
        ended, deferred, fine, other = ids
        replies.end(ended, error="message_not_found")
        assert replies.claim(deferred, shown="running", showing="queued")
        assert not replies.claim(deferred, shown="running", showing="queued")  # claimed once
        replies.defer(
            deferred, showing="queued", back_to="running", until=now + timedelta(minutes=1)
        )
        assert [p.run.id for p in replies.pending(now=now)] == [fine, other]
        assert [p.run.id for p in replies.pending(now=now, exclude_teams=["T2"])] == [fine]
        later = [p for p in replies.pending(now=now + timedelta(minutes=2)) if p.run.id == deferred]
        assert later and later[0].attempts == 1 and later[0].shown_status is RunStatus.RUNNING
        replies.recovered(deferred)
        assert [p.attempts for p in replies.pending(now=now) if p.run.id == deferred] == [0]
    finally:
        services.close()
        engine.dispose()
