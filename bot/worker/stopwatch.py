"""The worker's side of stopping runs: the runs this process is executing, each with its
``StopSwitch``, flipped when someone asked for that run to stop (``bot.services.stops``).

The request is in the database; the run signal (a change of the run, told in this process or
relayed from another) wakes the watch at once, and it reads the database every ``every``
seconds anyway, so a stop asked for from a process whose signal does not reach this one (a
Celery worker on another host, the terminal) still lands within about that."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from bot.services.runs import RunRecords
from bot.worker.sandbox import StopSwitch

logger = logging.getLogger(__name__)


class StopWatch:
    def __init__(self, runs: RunRecords, *, every: float = 1.0) -> None:
        self._runs = runs
        self._every = every
        self._active: dict[str, StopSwitch] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        runs.signal.subscribe(self._heard)

    @contextmanager
    def watching(self, run_id: str, *, stopped: bool = False) -> Iterator[StopSwitch]:
        """A switch for ``run_id`` while it executes; flipped if a stop is asked, or was
        (``stopped``: the claim read it), and no query needed for that."""
        switch = StopSwitch()
        if stopped:
            logger.info("run %s: stopping it, as asked before it started", run_id)
            switch.flip()
        with self._lock:
            self._active[run_id] = switch
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._loop, name="taskbot-stopwatch", daemon=True
                )
                self._thread.start()
        try:
            yield switch
        finally:
            with self._lock:
                self._active.pop(run_id, None)
            switch.close()

    def _heard(self, run_id: str) -> None:
        with self._lock:
            mine = run_id in self._active
        if mine:
            self._wake.set()

    def _loop(self) -> None:
        while True:
            self._wake.wait(self._every)
            self._wake.clear()
            with self._lock:
                active = dict(self._active)
            if not active:
                continue
            try:
                asked = self._runs.stop_requested(list(active))
            except Exception:
                logger.exception("could not read stop requests")
                continue
            for run_id in asked:
                switch = active[run_id]
                if not switch.flipped:
                    logger.info("run %s: stopping it, as asked", run_id)
                    switch.flip()
