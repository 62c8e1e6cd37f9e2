"""Scrubbing the WAL soon after a run's input was dropped, off the run's path.

A checkpoint that truncates the WAL costs milliseconds (it writes the database and syncs it)
and holds up the readers of that moment, so doing one in every run's ``finish`` put it on the
way of every result. Here ``soon()`` asks for one; a thread of its own does it ``delay`` seconds
later, and every request made meanwhile shares it. ``wait_idle`` waits until none is pending
or under way (tests, and ``close`` before the process ends).
"""

from __future__ import annotations

import logging
import threading
import time

from sqlalchemy import Engine

from storage.private import scrub

logger = logging.getLogger(__name__)


class WalScrubber:
    def __init__(self, engine: Engine, *, delay: float = 0.25) -> None:
        self._engine = engine
        self._delay = delay
        self._cond = threading.Condition()
        self._pending = False
        self._busy = False
        self._closed = False
        self._thread: threading.Thread | None = None

    def soon(self) -> None:
        """Scrub within ``delay`` seconds (at once when closed: nobody is left to do it)."""
        if self._engine.dialect.name != "sqlite":
            return
        with self._cond:
            if self._closed:
                closed = True
            else:
                closed = False
                self._pending = True
                if self._thread is None:
                    self._thread = threading.Thread(
                        target=self._loop, name="taskbot-wal-scrub", daemon=True
                    )
                    self._thread.start()
                self._cond.notify_all()
        if closed:
            scrub(self._engine)

    def wait_idle(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._pending or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def close(self) -> None:
        """Do a scrub still pending now; later requests scrub at once, in their caller."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join()

    def _loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending:
                    return  # closed with nothing to do
                if not self._closed:  # let the requests of the next moments join this one
                    self._cond.wait(self._delay)
                self._pending, self._busy = False, True
            try:
                scrub(self._engine)  # logs its own failures
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
