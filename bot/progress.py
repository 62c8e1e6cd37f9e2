"""Progress on standard error while the terminal waits: what is happening and for how long.

On a terminal one line is rewritten in place every second and erased at the end; elsewhere
nothing is written unless asked (``--progress`` or ``TASKBOT_PROGRESS=1``), and then a plain
line every few seconds. Standard output is never touched.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, TextIO, TypeVar

T = TypeVar("T")


def wanted(stream: TextIO, *, asked: bool = False) -> bool:
    if asked or os.environ.get("TASKBOT_PROGRESS", "").strip() in ("1", "true", "yes"):
        return True
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class Progress:
    """``with Progress("writing the code", stream=sys.stderr) as p: ...; p.say("running")``."""

    def __init__(
        self, what: str, *, stream: TextIO, enabled: bool, every: float | None = None
    ) -> None:
        self.what = what
        self._stream = stream
        self._enabled = enabled
        self._tty = bool(getattr(stream, "isatty", lambda: False)())
        self._every = every if every is not None else (1.0 if self._tty else 5.0)
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._width = 0
        self._thread = threading.Thread(target=self._loop, name="progress", daemon=True)

    def say(self, what: str) -> None:
        """Change what is shown (the clock keeps running)."""
        with self._lock:
            changed, self.what = what != self.what, what
        if changed and self._enabled:
            self._show()

    def _line(self) -> str:
        return f"{self.what}… {time.monotonic() - self._started:.0f} s"

    def _show(self) -> None:
        with self._lock:
            line = self._line()
            try:
                if self._tty:
                    pad = " " * max(0, self._width - len(line))
                    self._stream.write(f"\r{line}{pad}")
                    self._width = len(line)
                else:
                    self._stream.write(line + "\n")
                self._stream.flush()
            except (OSError, ValueError):
                self._done.set()  # the terminal went away: stop showing

    def _loop(self) -> None:
        while not self._done.wait(self._every):
            self._show()

    def __enter__(self) -> Progress:
        self._started = time.monotonic()
        if self._enabled:
            self._show()
            self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._done.set()
        if not self._enabled:
            return
        self._thread.join(timeout=2)
        if self._tty:
            with self._lock:
                try:
                    self._stream.write("\r" + " " * self._width + "\r")
                    self._stream.flush()
                except (OSError, ValueError):
                    pass


def interruptibly(work: Callable[[], T], *, slice_seconds: float = 0.1) -> T:
    """``work()`` on a daemon thread while this one waits in short slices, so Ctrl-C is
    raised here at once. (A signal may be delivered to any thread; a main thread blocked in a
    socket read does not see it until the read returns, which is the model's whole timeout.)"""
    done = threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting thread, raised there
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name="cli-work", daemon=True).start()
    while not done.wait(slice_seconds):
        pass
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]  # type: ignore[no-any-return]
