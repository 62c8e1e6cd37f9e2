"""Fair shares at the Slack edge: a place in the model pool, and the cap on files per message."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from bot.services.fairness import FairPool, Ticket
from bot.slack.block_kit import escape_inline as inline
from bot.slack.messages import Origin

Say = Callable[[str], None]


def model_turn(pool: FairPool, origin: Origin, say: Say) -> Ticket:
    """A place in the model's queue for this user and channel, or ``Busy``; says how many
    are ahead when some are."""
    ticket = pool.reserve(user=origin.user_id, channel=origin.channel_id)
    if ticket.ahead:
        say(f"Queued: {ticket.ahead} ahead of you with the model; yours follows in turn.")
    return ticket


def capped(
    files: Sequence[Mapping[str, Any]], *, cap: int, say: Say
) -> Sequence[Mapping[str, Any]]:
    """The files of one message that are run; the user is told which of the rest were not."""
    if len(files) > cap:
        say(too_many_files([str(f.get("name") or "file") for f in files[cap:]], cap))
    return files[:cap]


def too_many_files(names: Sequence[str], cap: int) -> str:
    """The answer to a message with more files than are run (``MAX_FILES_PER_MESSAGE``)."""
    shown = ", ".join(f"`{inline(n)[:80]}`" for n in names[:10])
    more = f" and {len(names) - 10} more" if len(names) > 10 else ""
    return (
        f"Only the first {cap} files of a message are run; these were not: {shown}{more}. "
        "Send them in another message."
    )
