"""The pure rules behind Stop, Home, the shortcut and DM'd files."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bot.services.reach import reachable
from bot.services.stops import may_stop
from bot.services.views import TaskView
from bot.slack import commands
from bot.slack.direct import is_direct_file, task_ref
from bot.slack.stop_blocks import stopped_by
from storage.kinds import TaskState, TaskType

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def task(*, channel: str | None = "C1", creator: str = "U1", team: str = "T1") -> TaskView:
    return TaskView(
        id="0123456789abcdef0123456789abcdef0123",
        team_id=team,
        enterprise_id=None,
        channel_id=channel,
        thread_ts="1.1",
        creator=creator,
        source="slack",
        desired_action="count rows",
        task_type=TaskType.PASSTHROUGH,
        state=TaskState.READY,
        state_detail=None,
        name="rows",
        current_version=1,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("user", "admins", "allowed"),
    [
        ("U2", (), True),
        ("U1", (), True),
        ("UA", ("UA",), True),
        ("U9", ("UA",), False),
        ("", (), False),
    ],
)
def test_who_may_stop(user: str, admins: tuple[str, ...], allowed: bool) -> None:
    assert may_stop(user_id=user, started_by="U2", task_creator="U1", admins=admins) is allowed


def test_a_task_is_reached_from_its_channel_or_by_its_creator() -> None:
    t = task()
    assert reachable(t, team_id="T1", user_id="U5", channels=["C1", "C2"])
    assert reachable(t, team_id="T1", user_id="U1", channels=[])
    assert not reachable(t, team_id="T1", user_id="U5", channels=["C2"])
    assert not reachable(t, team_id="T2", user_id="U1", channels=["C1"])  # another workspace


def test_stop_command_and_texts() -> None:
    assert commands.parse("stop 0123ab") == commands.Stop("0123ab")
    assert isinstance(commands.parse("stop"), commands.Help)
    assert stopped_by("U1") == "killed: stopped by <@U1>"
    assert stopped_by("cli") == "killed: stopped from the terminal"
    assert stopped_by("api") == "killed: stopped from the API"
    assert stopped_by("<!channel>") == "killed: stopped from the API"  # never echoed


def test_a_dmd_file_and_its_task_id() -> None:
    assert task_ref("please run 0123ab on it") == "0123ab"
    assert task_ref("run it") is None
    assert is_direct_file({"channel_type": "im", "files": [{"id": "F1"}]})
    assert not is_direct_file({"channel_type": "channel", "files": [{"id": "F1"}]})
    assert not is_direct_file({"channel_type": "im", "files": [{"id": "F1"}], "thread_ts": "1.1"})
