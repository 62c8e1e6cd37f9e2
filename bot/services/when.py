"""When a schedule runs: a few phrases people type, or a five-field cron expression, read into
one cron expression and told back in words (pure).

Cron arithmetic is croniter's: it steps through tz-aware datetimes in the user's zone, so a
daily 09:00 stays 09:00 across daylight-saving changes, which a hand-written parser would have
to get right itself."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.services.errors import InvalidInput

EXAMPLES = (
    "`daily at 09:00`, `weekdays at 8:30`, `mondays at 10am`, `every hour`, "
    "`every 15 minutes`, or a cron expression such as `0 9 * * 1-5`"
)
_DAYS = {
    "sunday": 0,
    "monday": 1,
    "tuesday": 2,
    "wednesday": 3,
    "thursday": 4,
    "friday": 5,
    "saturday": 6,
}
_DAY_NAMES = {v: k.title() + "s" for k, v in _DAYS.items()}
_TIME = r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?"
_DAILY = re.compile(rf"^(?:daily|every\s+day)(?:\s+at\s+{_TIME})?$")
_WEEKDAYS = re.compile(rf"^(?:weekdays|every\s+weekday)(?:\s+at\s+{_TIME})?$")
_WEEKLY = re.compile(rf"^(?:every\s+)?({'|'.join(_DAYS)})s?(?:\s+at\s+{_TIME})?$")
_HOURLY = re.compile(r"^(?:hourly|every\s+hour)$")
_MINUTES = re.compile(r"^every\s+(\d{1,2})\s+min(?:ute)?s?$")
_MIN_MINUTES = 5


@dataclass(frozen=True)
class When:
    cron: str
    timezone: str

    def next_after(self, moment: datetime) -> datetime:
        """The first tick strictly after ``moment`` (an aware datetime), in UTC terms."""
        from croniter import croniter  # on use: the web process never steps a schedule

        local = moment.astimezone(ZoneInfo(self.timezone))
        found: datetime = croniter(self.cron, local).get_next(datetime)
        return found

    def words(self) -> str:
        return describe(self.cron, self.timezone)


def zone(name: str | None) -> str:
    """A time zone Python knows, falling back to UTC (Slack's ``tz`` is an IANA name)."""
    if not name:
        return "UTC"
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return "UTC"
    return name


def _clock(hour: str | None, minute: str | None, half: str | None) -> tuple[int, int]:
    if hour is None:
        return 9, 0
    h, m = int(hour), int(minute or 0)
    if half is not None:
        if not 1 <= h <= 12:
            raise InvalidInput(f"`{hour}{half}` is not a time of day.")
        h = h % 12 + (12 if half == "pm" else 0)
    if not (0 <= h <= 23 and 0 <= m <= 59):
        raise InvalidInput(f"`{hour}:{minute or '00'}` is not a time of day.")
    return h, m


def parse_when(text: str, *, timezone: str) -> When:
    """``text`` as a schedule in ``timezone``; InvalidInput with examples when it is neither a
    known phrase nor a valid cron expression, or would run more often than every 5 minutes."""
    said = " ".join(text.lower().split())
    tz = zone(timezone)
    if match := _DAILY.match(said):
        h, m = _clock(*match.groups())
        return When(f"{m} {h} * * *", tz)
    if match := _WEEKDAYS.match(said):
        h, m = _clock(*match.groups())
        return When(f"{m} {h} * * 1-5", tz)
    if match := _WEEKLY.match(said):
        day, *rest = match.groups()
        h, m = _clock(*rest)
        return When(f"{m} {h} * * {_DAYS[day]}", tz)
    if _HOURLY.match(said):
        return When("0 * * * *", tz)
    if match := _MINUTES.match(said):
        every = int(match.group(1))
        if not _MIN_MINUTES <= every <= 59:
            raise InvalidInput(f"Every {_MIN_MINUTES} to 59 minutes, please (got {every}).")
        return When(f"*/{every} * * * *", tz)
    from croniter import croniter

    fields = said.split()
    if len(fields) == 5 and croniter.is_valid(said):
        when = When(said, tz)
        _check_often(when)
        return when
    raise InvalidInput(f"I can't read `{text.strip()}` as a schedule. Try {EXAMPLES}.")


def _check_often(when: When) -> None:
    start = datetime(2026, 1, 5, tzinfo=ZoneInfo("UTC"))
    first = when.next_after(start)
    second = when.next_after(first)
    if (second - first).total_seconds() < _MIN_MINUTES * 60:
        raise InvalidInput(f"A schedule may run at most every {_MIN_MINUTES} minutes.")


def describe(cron: str, timezone: str) -> str:
    """The cron expression in words where it is one of the phrases, else as itself."""
    minute, hour, dom, month, dow = cron.split()
    fixed = minute.isdigit() and hour.isdigit() and dom == "*" and month == "*"
    at = f"{int(hour):02d}:{int(minute):02d}" if fixed else ""
    if fixed and dow == "*":
        text = f"every day at {at}"
    elif fixed and dow == "1-5":
        text = f"weekdays at {at}"
    elif fixed and dow.isdigit() and int(dow) in _DAY_NAMES:
        text = f"{_DAY_NAMES[int(dow)]} at {at}"
    elif cron == "0 * * * *":
        text = "every hour, on the hour"
    elif minute.startswith("*/") and (hour, dom, month, dow) == ("*", "*", "*", "*"):
        text = f"every {minute[2:]} minutes"
    else:
        text = f"cron `{cron}`"
    return f"{text} ({timezone})"
