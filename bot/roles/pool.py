"""The pool process role (``TASK_QUEUE=local``): the sandbox and the runs, in a process of
their own under the flow process (``bot.roles.flow``), which feeds it typed values through a
pipe (``bot.services.handoff``). Runs no longer wait for the interpreter behind the uploads,
model calls and run messages the flow process handles, and those no longer wait behind runs
(``bench/bench_serve_runs.py``)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.config import Settings
from bot.services.checks import Execution
from bot.services.handoff import CheckDone, CheckRun, QueuedRun, RunChanged, Stop
from storage.kinds import RunStatus

logger = logging.getLogger(__name__)


def main(settings: Settings, inbox: Any, replies: Any) -> None:
    """Entry point of the pool process (spawned: a fresh interpreter, no inherited threads)."""
    from bot.composition import build_services
    from bot.roles.child import become_child

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

    def check(item: CheckRun) -> None:
        try:
            execution = services.checks(item.code)
        except Exception as exc:
            logger.exception("a check run failed in the pool process")
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
                if isinstance(item, QueuedRun):
                    services.runs.submit(item.run_id)
                elif isinstance(item, RunChanged):  # a stop asked for elsewhere: look again
                    services.signal.heard(item.run_id)
                elif isinstance(item, CheckRun):
                    checks.submit(check, item)
                else:
                    logger.error("the pool process got an unknown value %r", item)
            except Exception:
                logger.exception("the pool process could not take %r", item)
    finally:
        checks.shutdown(wait=False, cancel_futures=True)
        services.close()
