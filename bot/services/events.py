"""Run changes as events: who changed a run's state says so, and whoever waits hears it.

``RunSignal`` is the in-process signal: the run service calls ``changed`` after it commits a
run's claim or outcome; subscribers (the Slack run-message watcher) and waiters (the terminal,
the API) wake at once. Across processes a relay (``bot.worker.relay``: Redis pub/sub) forwards
what a Celery worker changed, and the receiving process calls ``heard``. The database stays
the truth: an event only says "look again", so a lost one costs a sweep, never a result."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

logger = logging.getLogger(__name__)

Listener = Callable[[str], None]


class RunSignal:
    def __init__(self) -> None:
        self._listeners: list[tuple[Listener, Listener]] = []  # (on a change, on a start)
        self._relays: list[tuple[Listener, Listener]] = []  # (a change, a start)
        self._changed = threading.Condition()
        self._count = 0

    def subscribe(self, listener: Listener, *, on_start: Listener | None = None) -> None:
        """``listener(run_id)`` after every change, on the changing thread: keep it short.
        With ``on_start``, a run's start here (``started``) calls that instead."""
        self._listeners.append((listener, on_start or listener))

    def relay(self, send: Listener, *, on_start: Listener | None = None) -> None:
        """``send(run_id)`` forwards this process's own changes to other processes; with
        ``on_start``, a start is forwarded by that instead."""
        self._relays.append((send, on_start or send))

    def changed(self, run_id: str) -> None:
        """A run's state changed here (committed): tell this process and the relays."""
        self.heard(run_id)
        self._relay(run_id, start=False)

    def started(self, run_id: str) -> None:
        """A run was claimed here and is running (committed): as ``changed``, but a listener
        with an ``on_start`` hears it there (the run-message watcher need not read a run that
        has only just started). A relay with an ``on_start`` forwards it by that."""
        self.heard(run_id, start=True)
        self._relay(run_id, start=True)

    def _relay(self, run_id: str, *, start: bool) -> None:
        for on_change, on_start in self._relays:
            try:
                (on_start if start else on_change)(run_id)
            except Exception:
                logger.exception("could not relay the change of run %s", run_id)

    def heard(self, run_id: str, *, start: bool = False) -> None:
        """A run's state changed (here or in another process): tell this process."""
        with self._changed:
            self._count += 1
            self._changed.notify_all()
        for on_change, on_start in self._listeners:
            hear = on_start if start else on_change
            try:
                hear(run_id)
            except Exception:
                logger.exception("a listener to run %s failed", run_id)

    @property
    def count(self) -> int:
        """How many changes were heard so far: pass it to ``wait_after``."""
        with self._changed:
            return self._count

    def wait_after(self, count: int, timeout: float) -> int:
        """Block until a change after ``count`` was heard, or ``timeout`` seconds passed."""
        with self._changed:
            self._changed.wait_for(lambda: self._count > count, timeout)
            return self._count
