"""A generation whose process died is failed by the sweep, and its task's root message in
Slack is updated to say so (it does not stay "generating…")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from slack_sdk import WebClient
from sqlalchemy import update

from bot.services.housekeeping import ABANDONED
from bot.services.views import Workspace
from storage.models import Task
from tests.e2e.slack.conftest import Stack
from tests.fakes.slack_api import text_of


def test_the_sweep_fails_an_abandoned_generation_and_updates_its_root(stack: Stack) -> None:
    tasks = stack.services.tasks
    # What a flow process that died mid-generation left: the task stored and announced.
    task = tasks.start(
        description="count the rows",
        requested_by="U1",
        source="slack",
        workspace=Workspace("T1", None),
        channel_id="C1",
    )
    client = WebClient(token="xoxb-test", base_url=stack.mock.api_url)
    root = str(client.chat_postMessage(channel="C1", text="Generating…")["ts"])
    tasks.attach_thread(task.id, channel_id="C1", thread_ts=root)
    with stack.services.uow() as uow:
        long_ago = datetime.now(UTC) - timedelta(days=1)
        uow.session.execute(update(Task).where(Task.id == task.id).values(updated_at=long_ago))
        uow.commit()

    sweep = stack.server.slack.flows.sweep
    sweep.sweep()  # what its timer does every minute (and at start)
    stack.mock.wait_until(
        lambda calls: [
            c for c in calls if c.method == "chat.update" and c.params.get("ts") == root
        ],
        timeout=10,
        what="the root message updated",
    )
    shown = [c for c in stack.mock.of("chat.update") if c.params.get("ts") == root]
    assert len(shown) == 1 and "Could not generate" in text_of(shown[0])
    assert ABANDONED.split(" (")[0] in text_of(shown[0])
    assert tasks.get(task.id).state == "failed"
    assert sweep.sweep() == 0  # failed and shown once
