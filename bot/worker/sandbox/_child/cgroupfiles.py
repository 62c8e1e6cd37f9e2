"""The zygote's side of its slot's cgroups: join them, set limits, read counters and CPU."""

from __future__ import annotations

from typing import Any

# Processes of the slot besides the run's own: the zygote and the next spare (the runs' init
# is forked before the zygote joins the slot's cgroups).
OVERHEAD_PROCESSES = 2


class CgroupFiles:
    def __init__(self, files: dict[str, str]) -> None:
        self.files = dict(files)
        self.counters: dict[str, int] = {}
        self._current: dict[str, int] = {}

    @property
    def memory(self) -> bool:
        return "memory_limit" in self.files

    def join(self, pid: int) -> None:
        for key in ("memory_procs", "pids_procs", "cpu_procs"):
            path = self.files.get(key)
            if path:
                write(path, str(pid))
        self.read_counters()

    def apply(self, limits: dict[str, Any], *, memory_slack: int) -> None:
        wanted = {
            "memory_limit": int(limits["memory_bytes"]) + memory_slack,
            "pids_max": int(limits["max_processes"]) + OVERHEAD_PROCESSES,
        }
        for key, value in wanted.items():
            path = self.files.get(key)
            if path and self._current.get(key) != value:
                write(path, str(value))
                self._current[key] = value

    def read_counters(self) -> None:
        for key, name in (("oom_events", "oom"), ("pids_events", "pids")):
            path = self.files.get(key)
            if path:
                self.counters[name] = event_count(path, ("oom_kill", "max"))

    def processes(self) -> int | None:
        """How many processes the slot's pids cgroup holds (zombies until reaped)."""
        path = self.files.get("pids_current")
        if path is None:
            return None
        try:
            with open(path, encoding="ascii") as fh:
                return int(fh.read())
        except (OSError, ValueError):
            return None

    def cpu_used(self) -> float | None:
        """CPU seconds used by everything in the slot's cgroup (the run, its children)."""
        path = self.files.get("cpu_usage")
        if path is not None:
            try:
                with open(path, encoding="ascii") as fh:
                    return int(fh.read()) / 1e9
            except (OSError, ValueError):
                return None
        path = self.files.get("cpu_stat")
        if path is not None:
            usec = event_count(path, ("usage_usec",))
            return usec / 1e6 if usec else None
        return None


def write(path: str, value: str) -> None:
    with open(path, "w", encoding="ascii") as fh:
        fh.write(value)


def event_count(path: str, keys: tuple[str, ...]) -> int:
    try:
        with open(path, encoding="ascii") as fh:
            for line in fh:
                name, _, count = line.partition(" ")
                if name in keys:
                    return int(count)
    except (OSError, ValueError):
        return 0
    return 0
