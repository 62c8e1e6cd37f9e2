"""The zygote: a warm, clean interpreter per slot that forks one confined child per run.

Started by the supervisor with an empty environment as ``python -I -c <bootstrap>``. It is
handed paths and limits only, never user data, so nothing of one run can linger in its memory
and leak into the next child.
"""

from __future__ import annotations

import gc
import importlib
import os
import select
import signal
import socket
import sys
import sysconfig
import time
from typing import Any

from . import linux, pidinit, protocol, runner
from .cgroupfiles import CgroupFiles, write
from .leftovers import done_message, kill_group, uid_has_processes, vm_size
from .seccomp import SeccompFilter
from .spare import Spare, spare_main, warm_up

_EXTRA_READ_ONLY = ("/usr/lib", "/lib", "/lib64", "/usr/lib64", "/usr/share/zoneinfo")
_SWEEP_SECONDS = 5.0
_WARM_WAIT_MS = 4.0
_CPU_CHECK_MIN = 0.02
_CPUS = max(1, len(os.sched_getaffinity(0)))


class Zygote:
    def __init__(self, ctrl: socket.socket, config: dict[str, Any]) -> None:
        self.ctrl = ctrl
        self.config = config
        self.uid: int | None = config.get("uid")
        self.gid: int | None = config.get("gid")
        self.features: dict[str, Any] = {}
        self.cgroups = CgroupFiles(dict(config.get("cgroup_files") or {}))
        self.spare: Spare | None = None
        self.cpu_start: float | None = None
        self.init_pid: int | None = None  # PID 1 of the runs' PID namespace
        self.init_dead = False
        # Warm the spare when the last run used the packages (a hint of one bit, no user data).
        self.warm = True

    # -- setup -----------------------------------------------------------------------------
    def setup(self) -> runner.Confinement:
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)
        try:  # needs CAP_SYS_RESOURCE; children raise theirs to 1000 either way (the init not)
            write("/proc/self/oom_score_adj", "-1000")
            self.features["oom_shield"] = True
        except OSError:
            self.features["oom_shield"] = False
        read_only = self._read_only_paths()
        view_fd = None
        if self.config.get("namespaces"):
            self._enter_namespaces()
            # Before any import: the init stays small (it is a copy of this process).
            self.init_pid, view_fd = pidinit.start(
                view_dirs=[*read_only, self.config["slot_dir"]], devices=runner.DEVICES
            )
            self.features["namespaces"].append("pid")
            self.features["mount_view"] = view_fd is not None
            self.features["init_pid"] = self.init_pid
        import_errors = {}
        # Packages read their settings at import: no display, and caches in a directory of
        # the zygote's own that no run can reach (each run is pointed at its own, see warm.py).
        os.environ["MPLBACKEND"] = "Agg"
        os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"  # one heap, the one limits count
        os.environ["JE_ARROW_MALLOC_CONF"] = "background_thread:false"
        if self.config.get("cache_dir"):
            os.environ["MPLCONFIGDIR"] = self.config["cache_dir"]
        for package in self.config.get("packages", []):
            try:
                importlib.import_module(package)
                warm_up(package)
            except Exception as exc:
                import_errors[package] = repr(exc)
        self.features["import_errors"] = import_errors
        seccomp = SeccompFilter() if self.config.get("seccomp") else None
        self.features["seccomp_rules"] = seccomp.rules if seccomp else 0
        abi = self.config.get("landlock_abi")
        self.features["landlock_abi"] = abi
        devnull = os.open("/dev/null", os.O_RDWR | os.O_CLOEXEC)
        conf = runner.Confinement(
            uid=self.uid,
            gid=self.gid,
            landlock_abi=int(abi) if abi else None,
            read_only_paths=read_only,
            seccomp=seccomp,
            devnull_fd=devnull,
            address_space_base=vm_size(),
            memory_cgroup=self.cgroups.memory,
            view_fd=view_fd,
        )
        self._join_cgroups()
        gc.collect()
        gc.freeze()
        return conf

    def _enter_namespaces(self) -> None:
        linux.unshare(linux.CLONE_NEWNET | linux.CLONE_NEWNS | linux.CLONE_NEWIPC)
        linux.mount(None, "/", fstype=None, flags=linux.MS_REC | linux.MS_PRIVATE)
        self.features["namespaces"] = ["net", "mnt", "ipc"]
        scratch = int(self.config.get("scratch_bytes") or 0)
        if scratch:
            flags = linux.MS_NOSUID | linux.MS_NODEV | linux.MS_NOEXEC
            options = f"size={scratch},nr_inodes=16384,mode=0711"
            linux.mount("tmpfs", self.config["slot_dir"], fstype="tmpfs", flags=flags, data=options)
            self.features["scratch_tmpfs"] = scratch

    def _read_only_paths(self) -> list[str]:
        paths: list[str] = []
        for scheme_path in ("stdlib", "platstdlib", "purelib", "platlib"):
            for vars_ in ({}, {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}):
                paths.append(sysconfig.get_path(scheme_path, vars=vars_))
        paths.extend(_EXTRA_READ_ONLY)
        paths.extend(self.config.get("extra_read_only", []))
        return sorted({os.path.realpath(p) for p in paths if p and os.path.isdir(p)})

    def _join_cgroups(self) -> None:
        self.cgroups.join(os.getpid())
        self.features["cgroups"] = sorted(self.cgroups.files)

    # -- runs ------------------------------------------------------------------------------
    def serve(self, conf: runner.Confinement) -> None:
        self._send({"op": protocol.OP_READY, "pid": os.getpid(), "features": self.features})
        self.spare = self._prefork(conf)
        try:
            self._serve(conf)
        finally:
            self._drop_spare()
            self._sweep()

    def _serve(self, conf: runner.Confinement) -> None:
        init_fd = os.pidfd_open(self.init_pid) if self.init_pid is not None else None
        while True:
            poller = select.poll()
            poller.register(self.ctrl, select.POLLIN)
            if init_fd is not None:
                poller.register(init_fd, select.POLLIN)
            spare = self.spare.channel.fileno() if self.spare is not None else None
            if spare is not None:  # hangs up when the spare dies: reap it
                poller.register(spare, select.POLLIN)
            ready = {fd for fd, _event in poller.poll()}
            if init_fd in ready:
                return  # the init died: nothing can be forked into the PID namespace any more
            if spare in ready:
                self._reap()  # (a dying init waits for the spare, its namespace's last process)
            if self.ctrl.fileno() not in ready:
                continue
            try:
                data, fds, _flags, _addr = socket.recv_fds(self.ctrl, 1 << 16, 4)
            except ConnectionResetError:  # the supervisor died with a message of ours unread
                return
            if not data:
                return
            message = protocol.decode_message(data)
            op = message.get("op")
            if op == protocol.OP_RUN and len(fds) == 3:
                self._run(data, message, conf=conf, fds=fds)
                if self.init_dead:  # nothing more can be forked into the PID namespace
                    return  # the supervisor starts a new zygote for the next run
            else:
                for fd in fds:
                    os.close(fd)
                if op == protocol.OP_EXIT:
                    return

    def _run(
        self, data: bytes, message: dict[str, Any], *, conf: runner.Confinement, fds: list[int]
    ) -> None:
        limits = message["limits"]
        self.cgroups.apply(limits, memory_slack=int(self.config.get("memory_slack", 0)))
        started = time.monotonic()
        self.cpu_start = self.cgroups.cpu_used()
        try:
            launched = self._launch(conf, data, fds=fds, warm=bool(message.get("warm")))
        finally:
            for fd in fds:
                os.close(fd)
        if launched is None:
            self._send(done_message(message, protocol.EXIT_SETUP_FAILED << 8, elapsed=0.0))
            return
        pid, pidfd = launched
        # Fork the next run's process now, while this one runs: fork is off the critical path.
        self.warm = bool(message.get("warm"))
        if self.spare is None:
            self.spare = self._prefork(conf)
        deadline = started + float(limits["wall_seconds"])
        cpu_budget = float(limits["cpu_seconds"])
        timed_out, kill_reason = self._wait(pidfd, pid, deadline=deadline, cpu_budget=cpu_budget)
        if timed_out or kill_reason:
            kill_group(pid)
        _, status, usage = os.wait4(pid, 0)
        elapsed = time.monotonic() - started
        left = self._sweep()
        before = dict(self.cgroups.counters)
        self.cgroups.read_counters()
        done = done_message(message, status, elapsed=elapsed)
        run_cpu = self.cgroups.cpu_used()
        done.update(
            timed_out=timed_out,
            kill_reason=kill_reason,
            # All the run's processes (the cgroup's count since launch), else the direct child.
            cpu_seconds=usage.ru_utime + usage.ru_stime
            if run_cpu is None or self.cpu_start is None
            else run_cpu - self.cpu_start,
            max_rss_kb=usage.ru_maxrss,
            leftovers=left,
            oom_kills=self.cgroups.counters.get("oom", 0) - before.get("oom", 0),
            pids_limit_hits=self.cgroups.counters.get("pids", 0) - before.get("pids", 0),
        )
        self._send(done)

    def _launch(
        self, conf: runner.Confinement, data: bytes, *, fds: list[int], warm: bool
    ) -> tuple[int, int] | None:
        """Hand the run to the spare (forking one if needed); (pid, pidfd) or None."""
        for _attempt in range(2):
            spare, self.spare = self.spare, None
            # A run that uses the packages gains more from a warm spare than it loses by
            # waiting a little for one; other runs take a cold copy at once.
            if spare is not None and not spare.ready(wait_ms=_WARM_WAIT_MS if warm else 0):
                # Still warming up: run in a fresh cold copy, keep the warm one for the next run.
                spare, self.spare = None, spare
            spare = spare or self._prefork(conf, warm=False)
            if spare is None:
                return None
            try:
                pidfd = os.pidfd_open(spare.pid)
            except OSError:
                spare.close()
                continue
            try:
                socket.send_fds(spare.channel, [data], fds)
                return spare.pid, pidfd
            except OSError:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                os.close(pidfd)
            finally:
                spare.close()
        return None

    def _prefork(self, conf: runner.Confinement, *, warm: bool = True) -> Spare | None:
        """A copy of the zygote that waits, still unconfined, for its run's paths and fds."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        try:
            pid = os.fork()
        except OSError:
            for sock in (ours, theirs):
                sock.close()
            os.close(ready_r)
            os.close(ready_w)
            return None
        if pid == 0:
            packages = self.config.get("packages", []) if warm and self.warm else []
            spare_main(theirs, ready_w, conf=conf, warm=packages)
        theirs.close()
        os.close(ready_w)
        return Spare(pid, ours, ready_r)

    def _drop_spare(self) -> None:
        if self.spare is not None:
            kill_group(self.spare.pid)
            self.spare.close()
            self.spare = None

    def _wait(
        self, pidfd: int, pid: int, *, deadline: float, cpu_budget: float
    ) -> tuple[bool, str | None]:
        """Until the run exits, its wall time is up, all its processes together used up its
        CPU time (checked no later than the earliest moment they could have), or a kill."""
        cpu_left = cpu_budget
        try:
            poller = select.poll()
            poller.register(pidfd, select.POLLIN)
            poller.register(self.ctrl, select.POLLIN)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return True, None
                if self.cpu_start is not None:
                    used = (self.cgroups.cpu_used() or self.cpu_start) - self.cpu_start
                    cpu_left = cpu_budget - used
                    if cpu_left <= 0:
                        return False, "cpu"
                    remaining = min(remaining, max(_CPU_CHECK_MIN, cpu_left / _CPUS))
                for fd, _event in poller.poll(remaining * 1000):
                    if fd == pidfd:
                        return False, None
                    try:
                        data = self.ctrl.recv(1 << 16)
                    except ConnectionResetError:  # gone with a message of ours unread
                        data = b""
                    if not data:  # supervisor gone: stop the run, exit after the sweep
                        kill_group(pid)
                        raise SystemExit(0)
                    message = protocol.decode_message(data)
                    if message.get("op") == protocol.OP_KILL:
                        return False, str(message.get("reason") or "killed")
        finally:
            os.close(pidfd)

    def _sweep(self) -> int:
        """Kill and reap whatever the run left behind; return how many were found.

        As a child subreaper the zygote inherits every orphan outside a PID namespace; inside
        one, orphans go to the namespace's init, so the slot is asked too (its pids cgroup,
        else the slot uid's processes), zombies counting until the init reaps them.
        """
        deadline = time.monotonic() + _SWEEP_SECONDS
        self._reap()
        found = len(self._children()) + int(self._uid_alive())
        while self._children() or self._uid_alive():
            if time.monotonic() > deadline:
                break
            self._kill_all()
            time.sleep(0.0005)
            self._reap()
        return found

    def _reap(self) -> None:
        """Reap every exited child; forget the spare if it was among them."""
        while True:
            try:
                pid, _status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            if pid == self.init_pid:
                self.init_dead = True
            if self.spare is not None and self.spare.pid == pid:
                self.spare.close()
                self.spare = None

    def _children(self) -> list[int]:
        pid = os.getpid()
        mine = {self.spare.pid if self.spare else None, self.init_pid}
        with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
            return [int(p) for p in fh.read().split() if int(p) not in mine]

    def _uid_alive(self) -> bool:
        """Is a process of the run left that is not our child (an orphan the init holds)?"""
        if self.init_pid is None or self.uid is None:
            return False  # no PID namespace: every orphan is our child (we are the subreaper)
        held = self.cgroups.processes()
        if held is not None:  # the zygote and its spare are all the slot should hold
            return held > 1 + (self.spare is not None)
        return uid_has_processes(self.uid)

    def _kill_all(self) -> None:
        if self.uid is not None:
            # kill(-1) as the slot uid signals exactly that uid's processes, atomically with
            # respect to fork. The saved uid 0 lets us switch back; effective caps are dropped
            # meanwhile, so CAP_KILL does not widen the target set.
            os.setresuid(self.uid, self.uid, 0)
            try:
                os.kill(-1, signal.SIGKILL)
            finally:
                os.setresuid(0, 0, 0)
        for child in self._children():
            kill_group(child)

    def _send(self, message: dict[str, Any]) -> None:
        try:
            self.ctrl.send(protocol.encode_message(message))
        except (BrokenPipeError, ConnectionResetError):  # supervisor gone: exit after the sweep
            raise SystemExit(0) from None


def main() -> None:
    ctrl = socket.socket(fileno=int(sys.argv[2]))
    try:
        data = ctrl.recv(1 << 20)
    except ConnectionResetError:
        data = b""
    if not data:  # the supervisor went away before it said what to do
        return
    config = protocol.decode_message(data)
    zygote = Zygote(ctrl, config)
    try:
        conf = zygote.setup()
    except Exception as exc:
        zygote._send({"op": protocol.OP_READY, "error": repr(exc)})
        raise
    zygote.serve(conf)
