"""Block Kit for stopping: the Stop button a queued or running run (or a generation) shows."""

from __future__ import annotations

from typing import Any

STOP_RUN_ACTION = "stop_run"
STOP_GENERATION_ACTION = "stop_generation"


def stop_button(*, action_id: str, value: str) -> dict[str, Any]:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Stop"},
                "style": "danger",
                "action_id": action_id,
                "value": value,
            }
        ],
    }


def stopped_by(user: str | None) -> str:
    """How a run someone stopped reads: who stopped it (a Slack user id) or from where."""
    if not user:
        return "killed: stopped"
    if user[:1] in "UW" and user.isalnum():
        return f"killed: stopped by <@{user}>"
    return "killed: stopped from " + ("the terminal" if user == "cli" else "the API")
