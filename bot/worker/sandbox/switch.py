"""A stop switch: flipped from any thread, seen by the supervisor's poll loop as a readable fd.

``Sandbox.run(stop=...)`` watches it with the run's pipes: once flipped (before or during the
run) the zygote is told to kill the run, which ends ``killed`` with the reason ``stopped`` and
everything it started dead (the zygote's usual sweep)."""

from __future__ import annotations

import os
import threading


class StopSwitch:
    def __init__(self) -> None:
        self._read, self._write = os.pipe2(os.O_CLOEXEC | os.O_NONBLOCK)
        self._lock = threading.Lock()
        self._flipped = False
        self._closed = False

    def flip(self) -> None:
        with self._lock:
            if self._flipped or self._closed:
                return
            self._flipped = True
            os.write(self._write, b"x")

    @property
    def flipped(self) -> bool:
        return self._flipped

    def fileno(self) -> int:
        return self._read

    def close(self) -> None:
        with self._lock:
            if self._closed:
                return
            self._closed = True
            os.close(self._read)
            os.close(self._write)
