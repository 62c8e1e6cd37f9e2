"""How the person at the terminal starts Taskbot, for hints such as "run ... migrate"."""

from __future__ import annotations

import os
import sys


def bot_command() -> str:
    """``./scripts/run.sh`` as they typed it (run.sh says so in ``TASKBOT_COMMAND``), else this
    very interpreter with ``-m bot``: both work where ``python -m bot`` may not (outside the
    venv, ``python`` lacks the dependencies)."""
    given = os.environ.get("TASKBOT_COMMAND", "").strip()
    if given:
        return given
    return f"{sys.executable or 'python3'} -m bot"


def hint(arguments: str) -> str:
    """``hint("migrate")`` -> ``./scripts/run.sh migrate``."""
    return f"{bot_command()} {arguments}"
