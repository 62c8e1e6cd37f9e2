"""What isolation the host offers, and whether that is enough to run untrusted code."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ._child import landlock, linux, seccomp

_CGROUP_ROOT = Path("/sys/fs/cgroup")


@dataclass(frozen=True)
class HostIsolation:
    kernel: str = ""
    is_root: bool = False
    user_namespaces: bool = False
    network_namespace: bool = False
    mount_namespace: bool = False
    pid_namespace: bool = False
    mount_view: bool = False  # pivot_root into a root holding only what a run may read
    seccomp: bool = False
    landlock_abi: int | None = None
    pidfd: bool = False
    cgroup_version: int | None = None
    cgroup_memory: str | None = None  # writable parent directory for per-slot memory cgroups
    cgroup_pids: str | None = None  # writable parent directory for per-slot pids cgroups
    cgroup_cpu: str | None = None  # writable parent for per-slot CPU accounting (v1 cpuacct)

    @property
    def cgroup_memory_writable(self) -> bool:
        return self.cgroup_memory is not None

    @property
    def cgroup_pids_writable(self) -> bool:
        return self.cgroup_pids is not None

    @property
    def cpu_accounting(self) -> bool:
        """A run's CPU time can be counted over all its processes (cpuacct, or v2 cpu.stat)."""
        return self.cgroup_cpu is not None or (
            self.cgroup_version == 2 and self.cgroup_memory is not None
        )

    @property
    def protections(self) -> list[tuple[str, bool]]:
        """What a run relies on, in words, and whether this host has it."""
        return [
            ("no socket of any family, by any syscall (seccomp)", self.seccomp),
            ("no network, not even loopback (network namespace)", self.network_namespace),
            ("none of the app's files readable (Landlock)", self.landlock_abi is not None),
            ("no host process visible (a PID namespace per run)", self.pid_namespace),
            ("no metadata of host files (a minimal mount view per run)", self.mount_view),
            ("its own uid, and every process of it killed after the run (root)", self.is_root),
            ("scratch space bounded and dropped with the slot (tmpfs)", self.mount_namespace),
            ("memory limit over all its processes (memory cgroup)", self.cgroup_memory_writable),
            ("process limit over all its processes (pids cgroup)", self.cgroup_pids_writable),
            ("CPU limit over all its processes (cgroup CPU accounting)", self.cpu_accounting),
            ("wall-time limit without a race on pid reuse (pidfd)", self.pidfd),
        ]

    @property
    def problems(self) -> list[str]:
        """Why this host cannot meet the threat model (empty when it can)."""
        found: list[str] = []
        if not self.seccomp:
            reach = "named unix sockets (the PostgreSQL socket, trust auth)"
            if not self.network_namespace:
                reach = "TCP/UDP (loopback included) and " + reach
            found.append(
                f"no seccomp (libseccomp.so.2): cannot deny socket(); {reach} stay reachable"
            )
        if self.landlock_abi is None:
            found.append(
                "no Landlock: world-readable files outside the run dir (a .env with mode 0644, "
                "other runs' files) stay readable"
                + ("" if self.is_root else "; without root runs also share the app's uid")
            )
        if not self.pidfd:
            found.append("no pidfd_open (Linux >= 5.3 and Python >= 3.9 needed)")
        if not self.pid_namespace:
            found.append("no PID namespace (needs root): runs see the ids of host processes")
        if not self.mount_view:
            found.append(
                "no minimal mount view (needs root and a mount namespace): runs can stat() the "
                "app's files (the database, .env: size, owner, mtime)"
            )
        return found

    @property
    def secure(self) -> bool:
        return not self.problems

    @property
    def warnings(self) -> list[str]:
        """Layers that are missing but covered by others: weaker defence in depth."""
        found: list[str] = []
        if not self.network_namespace:
            found.append("no network namespace: network blocked by seccomp/Landlock only")
        if self.landlock_abi is not None and self.landlock_abi < 4:
            found.append("Landlock ABI < 4: TCP blocked by seccomp only")
        if self.landlock_abi is not None and self.landlock_abi < 6:
            found.append("Landlock ABI < 6: signals and abstract sockets not scoped")
        if not self.is_root:
            found.append("not root: no per-run uid, no uid sweep, RLIMIT_NPROC not applied")
        if not self.mount_namespace:
            found.append("no mount namespace: scratch space is not bounded by a tmpfs")
        if self.cgroup_memory is None:
            found.append("no writable memory cgroup: memory limited by RLIMIT_AS only")
        if self.cgroup_pids is None:
            found.append("no writable pids cgroup: processes limited by RLIMIT_NPROC only")
        if not self.cpu_accounting:
            found.append(
                "no CPU accounting cgroup: the CPU limit holds per process (RLIMIT_CPU), not "
                "for all of a run's processes together"
            )
        return found


def _own_cgroups() -> dict[str, str]:
    """controller -> path of this process's cgroup ('' key for the v2 hierarchy)."""
    owned: dict[str, str] = {}
    try:
        text = Path("/proc/self/cgroup").read_text(encoding="ascii")
    except OSError:
        return owned
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                owned[controller] = parts[2]
    return owned


def _writable_dir(path: Path) -> str | None:
    if path.is_dir() and os.access(path, os.W_OK | os.X_OK):
        return str(path)
    return None


def _cpuacct_v1(owned: dict[str, str]) -> str | None:
    if "cpuacct" not in owned:
        return None
    for mount in ("cpuacct", "cpu,cpuacct", "cpuacct,cpu"):
        base = _CGROUP_ROOT / mount
        if (base / "cpuacct.usage").exists():
            return _writable_dir(base / owned["cpuacct"].lstrip("/"))
    return None


def _probe_cgroups(is_root: bool) -> tuple[int | None, str | None, str | None, str | None]:
    if not is_root:
        return None, None, None, None  # delegation to non-root users is not handled
    owned = _own_cgroups()
    memory_v1 = _CGROUP_ROOT / "memory"
    pids_v1 = _CGROUP_ROOT / "pids"
    if "memory" in owned and (memory_v1 / "memory.limit_in_bytes").exists():
        memory = _writable_dir(memory_v1 / owned["memory"].lstrip("/"))
        pids = (
            _writable_dir(pids_v1 / owned.get("pids", "/").lstrip("/")) if "pids" in owned else None
        )
        return 1, memory, pids, _cpuacct_v1(owned)
    if "" in owned:
        for base in (_CGROUP_ROOT, _CGROUP_ROOT / "unified"):
            own = base / owned[""].lstrip("/")
            try:
                delegated = set((own / "cgroup.subtree_control").read_text().split())
            except OSError:
                continue
            usable = _writable_dir(own)
            return (
                2,
                usable if "memory" in delegated else None,
                usable if "pids" in delegated else None,
                None,  # v2: every cgroup has cpu.stat; the slot's memory cgroup counts CPU
            )
    return None, None, None, None


def _user_namespaces() -> bool:
    try:
        if Path("/proc/sys/kernel/unprivileged_userns_clone").read_text().strip() == "0":
            return False
    except OSError:
        pass
    try:
        return int(Path("/proc/sys/user/max_user_namespaces").read_text()) > 0
    except (OSError, ValueError):
        return False


def probe_host() -> HostIsolation:
    """Inspect the host without forking (safe to call from a threaded app)."""
    is_root = os.geteuid() == 0
    version, memory, pids, cpu = _probe_cgroups(is_root)
    return HostIsolation(
        kernel=os.uname().release,
        is_root=is_root,
        user_namespaces=_user_namespaces(),
        network_namespace=is_root and Path("/proc/self/ns/net").exists(),
        mount_namespace=is_root and Path("/proc/self/ns/mnt").exists(),
        pid_namespace=is_root and Path("/proc/self/ns/pid_for_children").exists(),
        mount_view=is_root
        and Path("/proc/self/ns/mnt").exists()
        and linux.SYS_PIVOT_ROOT is not None,
        seccomp=seccomp.available(),
        landlock_abi=landlock.abi_version(),
        pidfd=hasattr(os, "pidfd_open"),
        cgroup_version=version,
        cgroup_memory=memory,
        cgroup_pids=pids,
        cgroup_cpu=cpu,
    )
