"""A thread pool that knows when it has nothing left to do: ``wait_idle`` returns once every job
handed to it so far has finished (and those jobs' own hand-offs, when they hand off to it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


class TrackedPool(ThreadPoolExecutor):
    def __init__(self, *, max_workers: int, thread_name_prefix: str) -> None:
        super().__init__(max_workers=max_workers, thread_name_prefix=thread_name_prefix)
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        with self._idle:
            self._pending += 1
        try:
            future = super().submit(fn, *args, **kwargs)
        except BaseException:
            self._done(None)
            raise
        future.add_done_callback(self._done)
        return future

    def _done(self, _future: Any) -> None:
        with self._idle:
            self._pending -= 1
            if not self._pending:
                self._idle.notify_all()

    @property
    def busy(self) -> bool:
        with self._idle:
            return self._pending > 0

    def wait_idle(self, timeout: float) -> bool:
        """Block until no job is pending or running; False when ``timeout`` ran out first."""
        deadline = time.monotonic() + timeout
        with self._idle:
            return self._idle.wait_for(
                lambda: self._pending == 0, max(0.0, deadline - time.monotonic())
            )
