"""The flow process role: the slow half of Slack (flows, model calls, the run-message watcher)
and, with ``TASK_QUEUE=local``, the sandbox pool, in a process of its own. The web process
starts it (``bot.slack.flowproc.FlowProcess``) and feeds it typed values through a pipe."""

from __future__ import annotations

import ctypes
import logging
import os
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from bot.config import Settings
from bot.services.checks import Execution
from bot.slack.messages import CheckDone, CheckRun, Message, QueuedRun, RunChanged, Stop
from storage.kinds import RunStatus

if TYPE_CHECKING:
    from bot.composition import Runner

logger = logging.getLogger(__name__)

FLOW_NICENESS = 10
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() == 1:  # the parent died before the line above
        raise SystemExit(0)


def main(settings: Settings, inbox: Any, replies: Any) -> None:
    """Entry point of the flow process (spawned: a fresh interpreter, no inherited threads)."""
    # Imported here: the web process imports this module only to name this function as the
    # flow process's target, and must not hold the slow half's modules nor the services' ORM
    # (bench/bench_rss.py).
    from bot.composition import build_services
    from bot.roles.sweeper import Sweeper
    from bot.slack.app import build_flows

    # Acks come first: the web process keeps the CPU when both want it. And this process must
    # not outlive the web process that feeds it.
    os.setpriority(os.PRIO_PROCESS, 0, FLOW_NICENESS)
    _die_with_parent()
    # Ctrl-C reaches the whole process group: the web process handles it and stops this one.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s [flows]: %(message)s"
    )
    runner: Runner = "celery" if settings.task_queue == "celery" else "local"
    services = build_services(settings, runner=runner)
    # Every change of a run made here (the pool's claims and outcomes) goes back to the web
    # process, whose API waits listen to its own signal (``FlowProcess._read``).
    services.signal.relay(lambda run_id: replies.put(RunChanged(run_id)))
    if services.pool is not None:
        services.pool.recover(services.runs)
    flows = build_flows(services)
    flows.start()
    # Retention and audit purges: database work that needs no Slack request, done here, where the
    # services (and the ORM) are loaded anyway, not in the web process.
    sweeper = Sweeper(services, abandoned=False)
    checks = ThreadPoolExecutor(max_workers=2, thread_name_prefix="taskbot-checks")

    def check(item: CheckRun) -> None:
        try:
            execution = services.checks(item.code)
        except Exception as exc:
            logger.exception("a check run failed in the flow process")
            execution = Execution(
                status=RunStatus.FAILED,
                result=b"",
                error_type="SandboxError",
                error_message=f"The sandbox could not run the checks: {exc}",
                killed_reason=None,
            )
        replies.put(CheckDone(item.request_id, execution))

    try:
        while True:
            item = inbox.get()
            if isinstance(item, Stop):
                break
            try:
                if isinstance(item, Message):
                    flows.dispatch(item)
                elif isinstance(item, CheckRun):
                    checks.submit(check, item)
                elif isinstance(item, QueuedRun):
                    services.runs.submit(item.run_id)
                else:
                    logger.error("the flow process got an unknown value %r", item)
            except Exception:
                logger.exception("the flow process could not take %r", item)
    finally:
        sweeper.stop()
        checks.shutdown(wait=False, cancel_futures=True)
        flows.close()
        services.close()
