"""Who may see and run a task from where (pure rules, shared by every chat edge)."""

from __future__ import annotations

from collections.abc import Collection

from bot.services.errors import NotAllowed, NotFound
from bot.services.views import TaskView


def check_gate(
    *,
    channel_id: str,
    user_id: str,
    allowed_channels: Collection[str],
    allowed_users: Collection[str],
) -> None:
    """The operator's optional allow-lists (ALLOWED_CHANNELS, ALLOWED_USERS)."""
    if allowed_users and user_id not in allowed_users:
        raise NotAllowed("You are not on this Taskbot's list of users. Ask its operator.")
    if allowed_channels and channel_id not in allowed_channels:
        raise NotAllowed("Taskbot is not enabled in this channel. Ask its operator.")


def check_task_access(task: TaskView, *, team_id: str, channel_id: str, user_id: str) -> None:
    """A task belongs to its workspace; its code and results stay in its channel or with its
    creator. From another channel, only the creator may show or run it."""
    if task.team_id != team_id:
        raise NotFound(f"No task with id {task.id[:8]!r}.")
    if task.channel_id not in (None, channel_id) and task.creator != user_id:
        raise NotAllowed(
            f"Task `{task.id[:8]}` belongs to <#{task.channel_id}>: use it there, "
            f"or ask <@{task.creator}>."
        )
