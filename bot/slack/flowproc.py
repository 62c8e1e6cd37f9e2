"""The web process's handle on the flow process (``bot.roles.flow``): starts it, hands it
typed messages, starts it again if it dies (``bot.services.handoff.ChildProcess``).

``python -m bot serve`` keeps only the ack path in the web process: Python threads share one
interpreter lock, so background work in the same process delays acks (measured in
bench/bench_ack.py). The web process hands over plain values through a pipe: typed messages
(``bot.slack.messages``), and the ids of runs the HTTP API queued. Typed values come back on a
second queue, dispatched by type: a check's answer (``CheckDone``), and every change of a run
the pool made (``RunChanged``), told to the web process's ``RunSignal`` so an API wait on the
run wakes as soon as it ends instead of at its next database read.
"""

from __future__ import annotations

from bot.config import Settings
from bot.services.events import RunSignal
from bot.services.handoff import ChildProcess, RunChanged, Target
from bot.slack.messages import Message


class FlowProcess(ChildProcess):
    """Starts the flow process, hands it work, and starts it again if it dies."""

    def __init__(self, settings: Settings, *, target: Target, signal: RunSignal) -> None:
        """``target(settings, inbox, replies)`` is the flow process's entry
        (``bot.roles.flow.main``); it answers a ``CheckRun`` on ``replies`` and says there
        which runs changed, which ``signal`` (the web process's) then hears."""

        def heard(change: RunChanged) -> None:
            signal.heard(change.run_id)

        # It waits for its pool process (bot.roles.flow) for less than this, so the pool can
        # finish what it took before this process ends it.
        super().__init__(settings, target=target, name="flows", on_change=heard, stop_timeout=25.0)

    def dispatch(self, message: Message) -> None:
        self.send(message)
