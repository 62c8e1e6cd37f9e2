"""What of a failed run goes to the model when the user refines ("fix it").

A run's error can quote the user's data (``invalid literal for int() with base 10: '<a
cell of their file>'``), and the refine also describes the file the run read (its first
lines among it). The operator chooses (``RUN_ERRORS_TO_MODEL``): ``send`` both as they are
(the default: the model needs them to fix the code), ``redact`` every quoted value in the
error and leave the file's lines out, or ``off``: the model hears only that the run failed,
its error type, and the file's name and kind (pure).
"""

from __future__ import annotations

import re
from enum import StrEnum


class RunErrorSharing(StrEnum):
    SEND = "send"
    REDACT = "redact"
    OFF = "off"


REDACTED = "<redacted>"
# A quoted value on one line: '...' or "..." (with escapes), as Python's reprs and messages
# quote what they were given. Traceback location lines (File "task.py", line 3) are kept.
_QUOTED = re.compile(r"""(?P<q>['"])(?:\\.|(?!(?P=q)).)*?(?P=q)""")
_LOCATION = re.compile(r'^\s*File "[^"\n]*", line \d+')


def redact(text: str) -> str:
    """``text`` with every quoted value replaced, location lines of a traceback kept."""
    lines = []
    for line in text.splitlines():
        location = _LOCATION.match(line)
        head, rest = (line[: location.end()], line[location.end() :]) if location else ("", line)
        lines.append(head + _QUOTED.sub(lambda m: f"{m['q']}{REDACTED}{m['q']}", rest))
    return "\n".join(lines)


def shared_error(
    *,
    status: str,
    error_type: str | None,
    message: str | None,
    tail: str | None,
    sharing: RunErrorSharing,
) -> str:
    """The last run's failure as the model is told it, under ``sharing``."""
    lines = [f"status: {status}"]
    if sharing is RunErrorSharing.OFF:
        if error_type:
            lines.append(f"error type: {error_type} (the message is not shared)")
        return "\n".join(lines)
    if error_type or message:
        lines.append(f"{error_type or 'Error'}: {message or ''}".rstrip())
    if tail:
        lines.append(tail)
    text = "\n".join(lines)
    return redact(text) if sharing is RunErrorSharing.REDACT else text


_FIRST_LINES = "Its first lines:"


def shared_input(profile: str | None, sharing: RunErrorSharing) -> str | None:
    """The last run's input as the model is told it: its name, size and kind always; its
    first lines only under ``send``."""
    if not profile or sharing is RunErrorSharing.SEND:
        return profile
    head, found, _lines = profile.partition(_FIRST_LINES)
    return head.rstrip() + ("\n(Its first lines are not shared.)" if found else "")


def refine_notice(sharing: RunErrorSharing) -> str:
    """What the user is told where they reply to refine after a failed run."""
    if sharing is RunErrorSharing.OFF:
        return (
            'Reply in this thread to change the code ("fix it" works). The error above is not '
            "sent to the model: only that the run failed, and the file's name and kind."
        )
    if sharing is RunErrorSharing.REDACT:
        return (
            'Reply in this thread to change the code ("fix it" works): the error above is sent '
            "to the model with quoted values redacted, with the file's name and kind."
        )
    return (
        'Reply in this thread to change the code ("fix it" works): the error above, which '
        "can quote your file, and the file's first lines are sent to the model."
    )
