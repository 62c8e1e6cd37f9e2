"""A role's child process (``bot.services.handoff.ChildProcess``) with real spawned processes:
one killed while it waits for work is started again and takes the next value (a child dead
inside a queue's ``get`` keeps that queue's lock, so each start has queues of its own); a check
asked of a child that died is answered "unavailable" at once, not after its timeout; and
``close`` lets the child finish, its replies read to the end."""

from __future__ import annotations

import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.config import Settings
from bot.services.handoff import ChildProcess, QueuedRun, RunChanged, Stop


def echo(settings: Settings, inbox: Any, replies: Any) -> None:
    """A child that answers each queued run with that run's change, until ``Stop``."""
    replies.put(RunChanged(f"started:{os.getpid()}"))
    while True:
        item = inbox.get()
        if isinstance(item, Stop):
            replies.put(RunChanged("stopped"))
            return
        if isinstance(item, QueuedRun):
            replies.put(RunChanged(item.run_id))


def silent(settings: Settings, inbox: Any, replies: Any) -> None:
    """A child that takes a value and dies without a word (as one killed mid-check would)."""
    inbox.get()
    os._exit(3)


class Heard:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self._changed = threading.Condition()

    def __call__(self, change: RunChanged) -> None:
        with self._changed:
            self.ids.append(change.run_id)
            self._changed.notify_all()

    def wait_for(self, wanted: str, count: int = 1, timeout: float = 60.0) -> list[str]:
        """The ids heard that start with ``wanted``, once there are ``count`` of them."""

        def matching() -> list[str]:
            return [i for i in self.ids if i.startswith(wanted)]

        with self._changed:
            found = self._changed.wait_for(lambda: len(matching()) >= count, timeout)
            assert found, f"never heard {count} x {wanted!r}; heard {self.ids}"
            return matching()


def test_a_child_killed_while_it_waits_is_replaced_and_takes_the_next_value() -> None:
    heard = Heard()
    child = ChildProcess(Settings(), target=echo, name="echo", on_change=heard)
    child.start()
    try:
        first = heard.wait_for("started:")[0]
        child.submit("run-1")
        heard.wait_for("run-1")
        # Killed inside inbox.get(), holding that queue's lock.
        os.kill(int(first.split(":")[1]), signal.SIGKILL)
        second = heard.wait_for("started:", count=2)[1]
        assert second != first
        child.submit("run-2")
        heard.wait_for("run-2")
    finally:
        child.close()
    heard.wait_for("stopped")  # it finished, and its last reply was still read


def test_a_check_asked_of_a_child_that_died_is_answered_at_once() -> None:
    child = ChildProcess(
        Settings(), target=silent, name="silent", on_change=Heard(), check_timeout=600.0
    )
    child.start()
    try:
        with ThreadPoolExecutor(max_workers=1) as asking:
            answer = asking.submit(child.execute, "harness")
            execution = answer.result(timeout=120)  # the restart answers it, not the timeout
        assert execution.error_type == "ChecksUnavailable"
    finally:
        child.close()
