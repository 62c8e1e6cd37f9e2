"""Per-slot memory and pids cgroups, created once at start (per-run creation costs ~10 ms).

The zygote moves itself in after its imports (so its own pages stay charged to the parent);
every run child inherits the cgroup through fork, which costs nothing per run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .probe import HostIsolation

logger = logging.getLogger(__name__)


@dataclass
class SlotCgroup:
    dirs: list[Path] = field(default_factory=list)
    files: dict[str, str] = field(default_factory=dict)

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in self.dirs:
            try:
                text = (directory / "cgroup.procs").read_text(encoding="ascii")
            except OSError:
                continue
            found.update(int(p) for p in text.split())
        return found

    def stat(self, key: str) -> int | None:
        """One counter of memory.stat (e.g. ``shmem``: tmpfs and memfd pages charged here)."""
        path = self.files.get("memory_stat")
        if path is None:
            return None
        try:
            with open(path, encoding="ascii") as fh:
                for line in fh:
                    name, _, value = line.partition(" ")
                    if name == key:
                        return int(value)
        except (OSError, ValueError):
            return None
        return None

    def kill_all(self, *, timeout: float = 5.0) -> bool:
        """SIGKILL everything in the cgroups until empty; True when empty."""
        deadline = time.monotonic() + timeout
        while True:
            pids = self.pids()
            if not pids:
                return True
            if time.monotonic() > deadline:
                return False
            for pid in pids:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        self.kill_all()
        for directory in self.dirs:
            for _attempt in range(50):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.02)  # the last zombies are still being released
            else:
                logger.warning("could not remove cgroup %s", directory)


def remove_stale(isolation: HostIsolation, prefix: str, *, in_use: Callable[[str], bool]) -> None:
    """rmdir empty slot cgroups left by crashed processes (rmdir fails on busy ones)."""
    for parent in {isolation.cgroup_memory, isolation.cgroup_pids, isolation.cgroup_cpu} - {None}:
        for directory in Path(str(parent)).glob(prefix + "*"):
            if not in_use(directory.name[len(prefix) :]):
                with contextlib.suppress(OSError):
                    directory.rmdir()


def create_slot_cgroup(isolation: HostIsolation, name: str) -> SlotCgroup | None:
    """Create (or reclaim) the slot's cgroups; None when the host has no writable ones."""
    cgroup = SlotCgroup()
    try:
        if isolation.cgroup_version == 1:
            _create_v1(cgroup, isolation, name)
        elif isolation.cgroup_version == 2 and isolation.cgroup_memory:
            _create_v2(cgroup, Path(isolation.cgroup_memory) / name, isolation)
    except OSError:
        logger.exception("cannot create cgroup %s; continuing without it", name)
        cgroup.remove()
        return None
    return cgroup if cgroup.dirs else None


def _make(cgroup: SlotCgroup, directory: Path) -> Path:
    directory.mkdir(exist_ok=True)
    cgroup.dirs.append(directory)
    if not cgroup.kill_all():
        raise OSError(f"stale processes in {directory} do not die")
    return directory


def _create_v1(cgroup: SlotCgroup, isolation: HostIsolation, name: str) -> None:
    if isolation.cgroup_memory:
        memory = _make(cgroup, Path(isolation.cgroup_memory) / name)
        cgroup.files["memory_procs"] = str(memory / "cgroup.procs")
        cgroup.files["memory_limit"] = str(memory / "memory.limit_in_bytes")
        cgroup.files["oom_events"] = str(memory / "memory.oom_control")
        cgroup.files["memory_stat"] = str(memory / "memory.stat")
    if isolation.cgroup_cpu:
        cpu = _make(cgroup, Path(isolation.cgroup_cpu) / name)
        cgroup.files["cpu_procs"] = str(cpu / "cgroup.procs")
        cgroup.files["cpu_usage"] = str(cpu / "cpuacct.usage")  # nanoseconds
    if isolation.cgroup_pids:
        pids = _make(cgroup, Path(isolation.cgroup_pids) / name)
        cgroup.files["pids_procs"] = str(pids / "cgroup.procs")
        cgroup.files["pids_max"] = str(pids / "pids.max")
        cgroup.files["pids_current"] = str(pids / "pids.current")
        cgroup.files["pids_events"] = str(pids / "pids.events")


def _create_v2(cgroup: SlotCgroup, directory: Path, isolation: HostIsolation) -> None:
    _make(cgroup, directory)
    cgroup.files["memory_procs"] = str(directory / "cgroup.procs")
    cgroup.files["memory_limit"] = str(directory / "memory.max")
    cgroup.files["oom_events"] = str(directory / "memory.events")
    cgroup.files["memory_stat"] = str(directory / "memory.stat")
    cgroup.files["cpu_stat"] = str(directory / "cpu.stat")  # usage_usec
    swap = directory / "memory.swap.max"
    if swap.exists():
        swap.write_text("0")
    if isolation.cgroup_pids:
        cgroup.files["pids_max"] = str(directory / "pids.max")
        cgroup.files["pids_current"] = str(directory / "pids.current")
        cgroup.files["pids_events"] = str(directory / "pids.events")
