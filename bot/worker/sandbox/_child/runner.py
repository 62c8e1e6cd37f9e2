"""The run child: confine the forked process, import the task module, call run(), report.

Everything here runs after fork() in the zygote; it never returns (os._exit).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import resource
import signal
import sys
import tempfile
import traceback
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NoReturn

from . import landlock, linux, protocol, warm
from .seccomp import SeccompFilter

_THREAD_VARS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS")


@dataclass(frozen=True)
class Confinement:
    """What the zygote prepared once, shared by all its run children."""

    uid: int | None
    gid: int | None
    landlock_abi: int | None
    read_only_paths: Sequence[str]
    seccomp: SeccompFilter | None
    devnull_fd: int
    address_space_base: int
    memory_cgroup: bool
    # The runs' minimal mount view, a mount namespace held by the slot's init (None: no view).
    view_fd: int | None = None


@dataclass(frozen=True)
class RunSpec:
    run_dir: str
    work_dir: str
    tmp_dir: str
    code_path: str
    input_path: str | None
    limits: dict[str, Any]

    @classmethod
    def from_message(cls, message: dict[str, Any]) -> RunSpec:
        return cls(
            run_dir=str(message["run_dir"]),
            work_dir=str(message["work_dir"]),
            tmp_dir=str(message["tmp_dir"]),
            code_path=str(message["code_path"]),
            input_path=None if message.get("input_path") is None else str(message["input_path"]),
            limits=dict(message["limits"]),
        )


DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom", "/dev/random")


def prepare_landlock(conf: Confinement) -> int | None:
    """Build the read-only part of the run's Landlock ruleset ahead of the run."""
    if conf.landlock_abi is None:
        return None
    return landlock.create_ruleset(
        abi=conf.landlock_abi, read_only=conf.read_only_paths, devices_rw=DEVICES
    )


def child_main(
    spec: RunSpec, conf: Confinement, *, fds: Sequence[int], ruleset: int | None = None
) -> NoReturn:
    """Entry point right after fork(). fds = (stdout, stderr, result) write ends."""
    try:
        if ruleset is None:
            ruleset = prepare_landlock(conf)
        _confine(spec, conf, fds=fds, ruleset=ruleset)
    except BaseException as exc:
        try:
            os.write(2, f"sandbox setup failed: {exc!r}\n".encode())
        finally:
            os._exit(protocol.EXIT_SETUP_FAILED)
    _execute(spec)


RUN_NICENESS = 10


def _confine(spec: RunSpec, conf: Confinement, *, fds: Sequence[int], ruleset: int | None) -> None:
    os.setsid()
    signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
    signal.signal(signal.SIGXCPU, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    # Untrusted code gets the CPU after the app: a busy run never delays Slack's acks.
    os.setpriority(os.PRIO_PROCESS, 0, RUN_NICENESS)
    if conf.view_fd is None:  # else done by the spare, before its view hid /proc
        set_oom_score()
    if ruleset is not None and conf.landlock_abi is not None:
        # As root (CAP_SYS_ADMIN) no_new_privs is not needed yet; nothing below opens paths
        # outside the run dir.
        landlock.enforce(ruleset, read_write=[spec.run_dir], abi=conf.landlock_abi)
    warm.release_handles()
    stdout_w, stderr_w, result_w = fds
    os.dup2(conf.devnull_fd, 0)
    os.dup2(stdout_w, 1)
    os.dup2(stderr_w, 2)
    os.dup2(result_w, protocol.RESULT_FD)
    os.closerange(protocol.RESULT_FD + 1, 1 << 16)
    _set_limits(spec.limits, conf)
    os.chdir(spec.work_dir)
    if conf.uid is not None and conf.gid is not None:
        os.setgroups([])
        os.setresgid(conf.gid, conf.gid, conf.gid)
        os.setresuid(conf.uid, conf.uid, conf.uid)
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
    if conf.seccomp is not None:
        conf.seccomp.load()
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
    env.update({"HOME": spec.work_dir, "TMPDIR": spec.tmp_dir, "MPLCONFIGDIR": spec.tmp_dir})
    env.update(dict.fromkeys(_THREAD_VARS, "1"))
    os.environ.clear()
    os.environ.update(env)
    warm.point_caches(spec.tmp_dir)
    tempfile.tempdir = None
    sys.dont_write_bytecode = True
    sys.argv = ["task.py"]


def set_oom_score() -> None:
    """The zygote shields itself with -1000; the run must be the first thing the OOM killer
    takes."""
    with open("/proc/self/oom_score_adj", "w", encoding="ascii") as adj:
        adj.write("1000")


def _set_limits(limits: dict[str, Any], conf: Confinement) -> None:
    memory = int(limits["memory_bytes"])
    # With a memory cgroup the cgroup is the real limit and RLIMIT_AS only a backstop.
    address_space = conf.address_space_base + memory * (4 if conf.memory_cgroup else 1)
    cpu = int(limits["cpu_seconds"])
    pairs = {
        resource.RLIMIT_AS: (address_space, address_space),
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_FSIZE: (int(limits["max_file_bytes"]),) * 2,
        resource.RLIMIT_NOFILE: (int(limits["max_open_files"]),) * 2,
        resource.RLIMIT_CORE: (0, 0),
        resource.RLIMIT_MSGQUEUE: (0, 0),
        resource.RLIMIT_MEMLOCK: (0, 0),
    }
    if conf.uid is not None:  # per-slot uid: the process count is the run's own
        pairs[resource.RLIMIT_NPROC] = (int(limits["max_processes"]),) * 2
    for which, (soft, hard) in pairs.items():
        resource.setrlimit(which, (soft, hard))


def _execute(spec: RunSpec) -> NoReturn:
    own_pid = os.getpid()
    try:
        value = _call_task(spec)
        kind, payload = _encode_value(value)
    except BaseException as exc:
        if os.getpid() != own_pid:  # a process the task forked unwound into here
            os._exit(1)
        _finish(_error_header(exc, spec.code_path), b"")
    if os.getpid() != own_pid:
        os._exit(0)
    cap = int(spec.limits.get("max_result_bytes") or spec.limits["max_output_bytes"])
    header = {
        "v": 1,
        "ok": True,
        "kind": kind,
        "size": len(payload),
        "truncated": len(payload) > cap,
    }
    _finish(header, payload[:cap])


def _call_task(spec: RunSpec) -> object:
    module_spec = importlib.util.spec_from_file_location("task", spec.code_path)
    if module_spec is None or module_spec.loader is None:
        raise ImportError("cannot load the task module")
    module = importlib.util.module_from_spec(module_spec)
    sys.modules["task"] = module
    module_spec.loader.exec_module(module)
    run = getattr(module, "run", None)
    if not callable(run):
        raise AttributeError("the task module does not define a function run(input_path)")
    return run(spec.input_path)


def _numpy_scalar(value: object) -> object:
    numpy = sys.modules.get("numpy")
    if numpy is not None and isinstance(value, numpy.generic):
        return value.item()
    raise TypeError(
        f"run() returned a value that is not JSON-serialisable: object of type "
        f"{type(value).__name__} (return bytes, str, None, or JSON data: dict, list, str, "
        "int, float, bool, None)"
    )


def _encode_value(value: object) -> tuple[str, bytes]:
    if value is None:
        return "none", b""
    if isinstance(value, bytes | bytearray | memoryview):
        return "bytes", bytes(value)
    if isinstance(value, str):
        return "text", value.encode("utf-8", "surrogateescape")
    return "json", json.dumps(value, ensure_ascii=False, default=_numpy_scalar).encode()


def _error_header(exc: BaseException, code_path: str) -> dict[str, Any]:
    kind = type(exc)
    module = kind.__module__
    name = (
        kind.__qualname__ if module in ("builtins", "__main__") else f"{module}.{kind.__qualname__}"
    )
    try:
        message = str(exc)
    except Exception:
        message = "<unprintable exception>"
    try:
        frames = [
            f
            for f in traceback.extract_tb(exc.__traceback__)
            if f.filename == code_path or not (f.filename == __file__ or f.filename.startswith("<"))
        ]
        text = "".join(traceback.format_list(frames))
        text += "".join(traceback.format_exception_only(kind, exc))
    except Exception:
        text = f"{name}: {message}\n"
    return {
        "v": 1,
        "ok": False,
        "error_type": name,
        "error_message": protocol.clip(message, protocol.ERROR_TEXT_LIMIT),
        "traceback": protocol.clip(text, protocol.TRACEBACK_LIMIT, tail=True),
    }


def _finish(header: dict[str, Any], payload: bytes) -> NoReturn:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    data = protocol.encode_header(header) + payload
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(protocol.RESULT_FD, view) :]
    except OSError:
        os._exit(1)
    os._exit(0 if header.get("ok") else 1)
