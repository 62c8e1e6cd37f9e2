"""The flow process role: the slow half of Slack (flows, model calls, the run-message watcher)
in a process of its own, and, with ``TASK_QUEUE=local``, the parent of the pool process
(``bot.roles.pool``: the sandbox and the runs). The web process starts it
(``bot.slack.flowproc.FlowProcess``) and feeds it typed values through a pipe."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.services.events import RunSignal
from bot.services.handoff import CheckRun, ChildProcess, QueuedRun, RunChanged
from bot.slack.messages import Message

if TYPE_CHECKING:
    from bot.composition import Services

logger = logging.getLogger(__name__)

FLOW_NICENESS = 10


def main(settings: Settings, inbox: Any, replies: Any) -> None:
    """Entry point of the flow process (spawned: a fresh interpreter, no inherited threads)."""
    # Imported here: the web process imports this module only to name this function as the
    # flow process's target, and must not hold the slow half's modules nor the services' ORM
    # (bench/bench_rss.py).
    from bot.roles.child import answer_check, become_child, take_until_stop
    from bot.roles.sweeper import Sweeper
    from bot.slack.app import build_flows

    # Acks come first: the web process keeps the CPU when both want it (the pool process,
    # started from here, inherits this). And this process must not outlive the web process.
    os.setpriority(os.PRIO_PROCESS, 0, FLOW_NICENESS)
    become_child(settings, role="flows")
    services, pool = _services(settings, replies)
    # Every change of a run made here (a stop, a queued run ended) goes to the web process,
    # whose API waits listen to its own signal (``FlowProcess._read``), and to the pool.
    services.signal.relay(lambda run_id: replies.put(RunChanged(run_id)))
    if pool is not None:
        services.signal.relay(lambda run_id: pool.send(RunChanged(run_id)))
    flows = build_flows(services)
    flows.start()
    # Retention and audit purges: database work that needs no Slack request, done here, where the
    # services (and the ORM) are loaded anyway, not in the web process.
    sweeper = Sweeper(services, abandoned=False)
    checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskbot-checks")

    handlers: dict[type, Callable[[Any], object]] = {
        Message: flows.dispatch,
        CheckRun: lambda item: checks.submit(
            answer_check, services.checks, item, replies, role="flow"
        ),
        QueuedRun: lambda item: services.runs.submit(item.run_id),
    }
    try:
        take_until_stop(inbox, handlers, role="flow")
    finally:
        if pool is not None:  # it finishes its runs meanwhile; waited for last
            pool.ask_to_stop()
        sweeper.stop()
        checks.shutdown(wait=False, cancel_futures=True)
        flows.close()
        services.close()
        if pool is not None:
            pool.close()


def _services(settings: Settings, replies: Any) -> tuple[Services, ChildProcess | None]:
    """The flow process's services; with ``TASK_QUEUE=local`` its pool process too, to which
    they queue runs and hand checks, and whose run changes this process hears and passes on
    to the web process."""
    from bot.composition import build_services
    from bot.roles import pool as pool_role

    if settings.task_queue == "celery":
        return build_services(settings, runner="celery"), None
    signal = RunSignal()

    def heard(change: RunChanged) -> None:
        signal.heard(change.run_id, start=change.started)
        if not change.started:  # the web process only waits for runs to end (API, MCP)
            replies.put(RunChanged(change.run_id))

    # Shorter waits than the web process's on this one (bot.slack.flowproc): an answer or a
    # stop comes back up before the web process gives up on it.
    pool = ChildProcess(
        settings,
        target=pool_role.main,
        name="pool",
        on_change=heard,
        check_timeout=settings.sandbox_wall_seconds + 20.0,
        stop_timeout=20.0,
    )
    pool.start()
    services = build_services(
        settings, runner="none", queue=pool, execute=pool.execute, signal=signal
    )
    return services, pool
