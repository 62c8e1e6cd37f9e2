"""One slot: a zygote process and the supervisor side of each run it executes."""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._cgroup import SlotCgroup
from ._child import protocol
from ._result import Captured, build_result
from ._rundir import collect_outputs, create_run_dir, remove_run_dir
from .models import OutputFile, SandboxLimits, SandboxResult
from .switch import StopSwitch

logger = logging.getLogger(__name__)

_BOOTSTRAP = (
    "import sys; sys.path.insert(0, sys.argv[1]); import _child.zygote as z; "
    "del sys.path[0]; z.main()"
)
_THREADS_1 = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")
ZYGOTE_ENV = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"} | dict.fromkeys(
    _THREADS_1, "1"
)
_CHILD_PACKAGE_DIR = str(Path(__file__).resolve().parent)
_DRAIN_FACTOR = 8  # stdout/stderr: keep their part, discard up to 8x the kept output, then kill
_BACKSTOP_SECONDS = 10.0  # zygote silent this long past the wall limit: presumed hung
_DONE_DRAIN_SECONDS = 2.0
_READ_CHUNK = 1 << 16


@dataclass(frozen=True)
class SlotConfig:
    index: int
    python: str
    slot_dir: Path
    uid: int | None
    gid: int | None
    namespaces: bool
    scratch_bytes: int
    packages: tuple[str, ...]
    seccomp: bool
    landlock_abi: int | None
    memory_slack: int = 64 * 2**20
    cache_dir: Path | None = None  # the zygote's package caches (0700, out of every run's reach)


class Slot:
    def __init__(
        self, config: SlotConfig, cgroup: SlotCgroup | None, *, light: bool = False
    ) -> None:
        self.config = config
        self.light = light  # a zygote without the packages, for code that imports none
        self.cgroup = cgroup
        self.proc: subprocess.Popen[bytes] | None = None
        self.ctrl: socket.socket | None = None
        self.features: dict[str, Any] = {}
        self.runs = 0
        self.broken = True
        self._run_counter = 0

    # -- zygote lifecycle -------------------------------------------------------------------
    def start(self, *, timeout: float = 120.0) -> dict[str, Any]:
        cfg = self.config
        if cfg.uid is not None:
            kill_uid(cfg.uid)  # leftovers of a crashed predecessor holding the same uid
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self.proc = subprocess.Popen(
                [cfg.python, "-I", "-c", _BOOTSTRAP, _CHILD_PACKAGE_DIR, str(theirs.fileno())],
                env=ZYGOTE_ENV,
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
                cwd="/",
                # The app runs with umask 077 (storage.private); the mount view the zygote
                # builds must stay traversable by the slot's uid. Users' data is protected by
                # the 0700 run directory, owned by that uid, not by this mask.
                umask=0o022,
            )
        finally:
            theirs.close()
        self.ctrl = ours
        ours.send(protocol.encode_message(self._zygote_config()))
        ours.settimeout(timeout)
        try:
            data = ours.recv(1 << 16)
        finally:
            ours.settimeout(None)
        ready: dict[str, Any] = {"error": "zygote exited at start"}
        if data:
            ready = protocol.decode_message(data)
        if ready.get("op") != protocol.OP_READY or "error" in ready:
            self.stop()
            raise RuntimeError(f"sandbox zygote {cfg.index} failed to start: {ready.get('error')}")
        self.features = dict(ready.get("features") or {})
        self.runs = 0
        self.broken = False
        return self.features

    def _zygote_config(self) -> dict[str, Any]:
        cfg = self.config
        return {
            "uid": cfg.uid,
            "gid": cfg.gid,
            "namespaces": cfg.namespaces,
            "slot_dir": str(cfg.slot_dir),
            "scratch_bytes": cfg.scratch_bytes if cfg.namespaces else 0,
            "packages": list(cfg.packages),
            "seccomp": cfg.seccomp,
            "landlock_abi": cfg.landlock_abi,
            "cgroup_files": self.cgroup.files if self.cgroup else {},
            "memory_slack": cfg.memory_slack,
            "cache_dir": str(cfg.cache_dir) if cfg.cache_dir else None,
        }

    def stop(self) -> None:
        proc, ctrl = self.proc, self.ctrl
        self.proc, self.ctrl, self.broken = None, None, True
        if ctrl is not None:
            with contextlib.suppress(OSError):
                ctrl.send(protocol.encode_message({"op": protocol.OP_EXIT}))
            ctrl.close()
        if proc is not None:
            try:
                proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.kill_leftovers()

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill_leftovers(self) -> None:
        """Supervisor-side sweep, for when the zygote cannot do it (died or hung)."""
        if self.cgroup is not None:
            self.cgroup.kill_all()
        if self.config.uid is not None:
            kill_uid(self.config.uid)

    def host_slot_dir(self) -> Path:
        if self.config.namespaces and self.proc is not None:
            return Path(f"/proc/{self.proc.pid}/root{self.config.slot_dir}")
        return self.config.slot_dir

    # -- one run ----------------------------------------------------------------------------
    def run(
        self,
        *,
        code: str,
        input_path: Path | None,
        input_name: str | None,
        limits: SandboxLimits,
        stop: StopSwitch | None = None,
        input_data: bytes | None = None,
    ) -> SandboxResult:
        if self.broken or self.ctrl is None:
            raise RuntimeError("sandbox slot is not running")
        started = time.monotonic()
        uid, gid = self.config.uid, self.config.gid
        run_dir = create_run_dir(
            host_slot_dir=self.host_slot_dir(),
            slot_dir=str(self.config.slot_dir),
            code=code,
            input_path=input_path,
            input_data=input_data,
            input_name=input_name,
            owner=(uid, gid) if uid is not None and gid is not None else None,
            max_input_bytes=limits.max_input_bytes,
        )
        try:
            self._run_counter += 1
            run_id = self._run_counter
            pipes = [os.pipe2(os.O_CLOEXEC) for _ in range(3)]
            message = {
                "op": protocol.OP_RUN,
                "run_id": run_id,
                "limits": limits.to_wire(),
                "warm": any(package in code for package in self.config.packages),
            }
            message |= run_dir.wire()
            try:
                socket.send_fds(
                    self.ctrl, [protocol.encode_message(message)], [w for _, w in pipes]
                )
            except OSError:
                for r, _ in pipes:
                    os.close(r)
                raise
            finally:
                for _, w in pipes:
                    os.close(w)
            report, streams, kill = self._pump(
                run_id, [r for r, _ in pipes], limits=limits, started=started, stop=stop
            )
            files: tuple[OutputFile, ...] = ()
            omitted: tuple[str, ...] = ()
            if report is not None:
                kept = sum(len(stream.data) for stream in streams[:2]) + _result_bytes(streams[2])
                files, omitted = collect_outputs(
                    run_dir.host_path,
                    max_bytes=limits.output_files_budget(kept=kept),
                    owner_uid=self.config.uid,
                )
        finally:
            removed = remove_run_dir(run_dir.host_path)
            if not (removed and self._clean()):
                # Whatever is left stays charged to the slot: start the next run on a new one.
                logger.error(
                    "sandbox slot %d is not clean after a run; recycling it", self.config.index
                )
                self.broken = True
        self.runs += 1
        return build_result(
            report=report,
            result_stream=streams[2],
            stdout=streams[0],
            stderr=streams[1],
            limits=limits,
            supervisor_kill=kill,
            duration=time.monotonic() - started,
            output_files=files,
            omitted_files=omitted,
        )

    def _clean(self) -> bool:
        """Nothing of the last run is left in the slot: its tmpfs is empty, no tmpfs or memfd
        page is charged to its memory cgroup (the zygote itself has none)."""
        if self.config.namespaces and self.config.scratch_bytes:
            try:
                usage = os.statvfs(self.host_slot_dir())
            except OSError:
                return False
            # Inodes are not compared: Landlock frees its hold on the run dir's inode lazily.
            if usage.f_blocks != usage.f_bfree:
                return False
        if self.cgroup is not None:
            shmem = self.cgroup.stat("shmem")
            if shmem is not None and shmem > 0:
                return False
        return True

    def _pump(
        self,
        run_id: int,
        fds: list[int],
        *,
        limits: SandboxLimits,
        started: float,
        stop: StopSwitch | None = None,
    ) -> tuple[dict[str, Any] | None, list[Captured], str | None]:
        """Read the three pipes with caps until the zygote reports and the pipes close."""
        assert self.ctrl is not None
        cap, result_cap = limits.stream_bytes, limits.result_bytes + protocol.HEADER_LIMIT
        streams = [Captured(cap), Captured(cap), Captured(result_cap)]
        drain = limits.max_output_bytes * _DRAIN_FACTOR  # printing a lot is no attack: keep going
        hard = [drain, drain, result_cap]
        index = {fd: i for i, fd in enumerate(fds)}
        poller = select.poll()
        for fd in [*fds, self.ctrl.fileno()]:
            poller.register(fd, select.POLLIN)
        stop_fd = stop.fileno() if stop is not None else None
        if stop_fd is not None:
            poller.register(stop_fd, select.POLLIN)
        report: dict[str, Any] | None = None
        kill: str | None = None
        deadline = started + limits.wall_seconds + _BACKSTOP_SECONDS
        try:
            while index or report is None:
                timeout = deadline - time.monotonic()
                if timeout <= 0:
                    if report is None:
                        logger.error(
                            "sandbox zygote %d is unresponsive; killing it", self.config.index
                        )
                        self._abandon()
                        kill = kill or "sandbox_error"
                    break
                for fd, _event in poller.poll(timeout * 1000):
                    if fd == stop_fd:
                        poller.unregister(fd)
                        if kill is None and report is None:
                            kill = "stopped"
                            self._send_kill(run_id, reason="stopped")
                        continue
                    if fd in index:
                        chunk = os.read(fd, _READ_CHUNK)
                        if not chunk:
                            poller.unregister(fd)
                            os.close(fd)
                            del index[fd]
                            continue
                        stream = index[fd]
                        streams[stream].feed(chunk)
                        if kill is None and streams[stream].seen > hard[stream]:
                            kill = "output"
                            self._send_kill(run_id, reason="output")
                        continue
                    data = self.ctrl.recv(1 << 16)
                    if not data:
                        logger.error("sandbox zygote %d died during a run", self.config.index)
                        self._abandon()
                        return None, streams, kill or "sandbox_error"
                    message = protocol.decode_message(data)
                    if message.get("op") == protocol.OP_DONE and message.get("run_id") == run_id:
                        report = message
                        poller.unregister(fd)
                        deadline = time.monotonic() + _DONE_DRAIN_SECONDS
        finally:
            for fd in index:
                os.close(fd)
        if report is not None and int(report.get("leftovers") or 0) and self.config.uid is None:
            logger.info("run %d left %s processes behind (killed)", run_id, report["leftovers"])
        return report, streams, kill

    def _send_kill(self, run_id: int, *, reason: str) -> None:
        assert self.ctrl is not None
        message = {"op": protocol.OP_KILL, "run_id": run_id, "reason": reason}
        try:
            self.ctrl.send(protocol.encode_message(message))
        except OSError:
            logger.exception("cannot ask zygote %d to kill run %d", self.config.index, run_id)

    def _abandon(self) -> None:
        """The zygote cannot be trusted to clean up: kill it and everything of the slot."""
        if self.proc is not None:
            self.proc.kill()
        self.stop()


def _result_bytes(stream: Captured) -> int:
    """The payload part of what the result pipe carried (its header is not kept as such)."""
    newline = stream.data.find(b"\n", 0, protocol.HEADER_LIMIT)
    return len(stream.data) - newline - 1 if newline >= 0 else 0


def kill_uid(uid: int, *, timeout: float = 5.0) -> int:
    """SIGKILL every process whose real uid is `uid` (walks /proc); returns how many seen."""
    deadline = time.monotonic() + timeout
    seen = 0
    while time.monotonic() < deadline:
        victims = [pid for pid in _pids() if _real_uid(pid) == uid]
        if not victims:
            break
        seen += len(victims)
        for pid in victims:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)
    return seen


def _pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def _real_uid(pid: int) -> int | None:
    """Real uid of a live process; None for zombies (nothing left to kill) and the vanished."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as fh:
            for line in fh:
                if line.startswith("State:") and line.split()[1] in ("Z", "X"):
                    return None
                if line.startswith("Uid:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
