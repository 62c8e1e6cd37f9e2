"""The pool process role (``TASK_QUEUE=local``): the sandbox and the runs, in a process of
their own under the flow process (``bot.roles.flow``), which feeds it typed values through a
pipe (``bot.services.handoff``). Runs no longer wait for the interpreter behind the uploads,
model calls and run messages the flow process handles, and those no longer wait behind runs
(``bench/bench_serve_runs.py``)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.config import Settings
from bot.services.handoff import CheckRun, QueuedRun, RunChanged

logger = logging.getLogger(__name__)


def main(settings: Settings, inbox: Any, replies: Any) -> None:
    """Entry point of the pool process (spawned: a fresh interpreter, no inherited threads)."""
    from bot.composition import build_services
    from bot.roles.child import answer_check, become_child, take_until_stop

    become_child(settings, role="pool")
    services = build_services(settings, runner="local")
    # Every change of a run made here (claims, starts, outcomes) goes up to the flow process,
    # whose run-message watcher and the web process's API waits listen for it.
    services.signal.relay(
        lambda run_id: replies.put(RunChanged(run_id)),
        on_start=lambda run_id: replies.put(RunChanged(run_id, started=True)),
    )
    assert services.pool is not None
    services.pool.recover(services.runs)
    checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskbot-checks")

    handlers: dict[type, Callable[[Any], object]] = {
        QueuedRun: lambda item: services.runs.submit(item.run_id),
        # A stop asked for elsewhere: the stop watch looks again.
        RunChanged: lambda item: services.signal.heard(item.run_id),
        CheckRun: lambda item: checks.submit(
            answer_check, services.checks, item, replies, role="pool"
        ),
    }
    try:
        take_until_stop(inbox, handlers, role="pool")
    finally:
        checks.shutdown(wait=False, cancel_futures=True)
        services.close()
