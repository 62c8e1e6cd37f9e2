"""``/task schedule|schedules|unschedule|pin|unpin`` parsed (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.services.when import EXAMPLES

VERBS = frozenset({"schedule", "schedules", "unschedule", "pin", "unpin"})
USAGE_LINES = (
    "• `/task schedule <id> <when>`: run it on a schedule in your time zone "
    "(`daily at 09:00`, `weekdays at 8:30`, `every hour`, or cron `0 9 * * 1-5`); a task that "
    "needs a file runs on the newest file in its thread\n"
    "• `/task schedules`, `/task unschedule <id>`: your schedules; stop one\n"
    "• `/task pin <id> vN`, `/task unpin <id>`: scheduled, workflow and MCP runs use vN\n"
)


@dataclass(frozen=True)
class Schedule:
    ref: str
    when: str


@dataclass(frozen=True)
class Schedules:
    pass


@dataclass(frozen=True)
class Unschedule:
    ref: str


@dataclass(frozen=True)
class Pin:
    ref: str
    version: int | None  # None: unpin


@dataclass(frozen=True)
class Problem:
    text: str


TriggerCommand = Schedule | Schedules | Unschedule | Pin


def parse_trigger(verb: str, rest: str) -> TriggerCommand | Problem:
    parts = rest.split(maxsplit=1)
    if verb == "schedules":
        return Schedules()
    if verb == "schedule":
        if len(parts) < 2:
            return Problem(f"Which task, and when? `/task schedule <id> <when>`, when: {EXAMPLES}.")
        return Schedule(parts[0], parts[1])
    if verb == "unschedule":
        if len(parts) != 1:
            return Problem("Which task? `/task unschedule <id>`")
        return Unschedule(parts[0])
    if verb == "unpin":
        if len(parts) != 1:
            return Problem("Which task? `/task unpin <id>`")
        return Pin(parts[0], None)
    words = rest.split()
    if len(words) != 2:
        return Problem("Which task and version? `/task pin <id> v2`")
    match = re.fullmatch(r"v?(\d+)", words[1], re.IGNORECASE)
    if not match:
        return Problem(f"`{words[1]}` is not a version: use e.g. `v2`.")
    return Pin(words[0], int(match.group(1)))
