"""The slot's PID namespace and mount view, held by a small init forked once per zygote.

The zygote forks it right after entering its namespaces, before importing any package, so it
stays small. It is PID 1 of a new PID namespace; every later child of the zygote (the spares,
so every run) is born in that namespace as PID 2, 3, ...: no host process exists there. Its
first act is to build the runs' minimal mount view (see ``mountview``) in a mount namespace of
its own, which each spare then joins with one ``setns()``. After that it only reaps the
orphans runs leave behind. It dies with the zygote (PDEATHSIG), and the kernel then kills
whatever is left in the namespace.
"""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Sequence
from typing import NoReturn

from . import linux, mountview


def start(*, view_dirs: Sequence[str] | None, devices: Sequence[str]) -> tuple[int, int | None]:
    """Fork the init of a new PID namespace; (its pid, a fd of the runs' mount view or None)."""
    linux.unshare(linux.CLONE_NEWPID)
    ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
    pid = os.fork()
    if pid == 0:
        _main(ready_w, view_dirs=view_dirs, devices=devices)
    os.close(ready_w)
    try:
        answer = os.read(ready_r, 512)
    finally:
        os.close(ready_r)
    if answer != b"ok":
        raise OSError(f"the sandbox init failed: {answer.decode('utf-8', 'replace')}")
    view = None
    if view_dirs is not None:
        view = os.open(f"/proc/{pid}/ns/mnt", os.O_RDONLY | os.O_CLOEXEC)
    return pid, view


def _main(ready_w: int, *, view_dirs: Sequence[str] | None, devices: Sequence[str]) -> NoReturn:
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGCHLD})
        for name in os.listdir("/proc/self/fd"):  # nothing of the zygote's (its control socket)
            if int(name) not in (0, 1, 2, ready_w):
                with contextlib.suppress(OSError):
                    os.close(int(name))
        if view_dirs is not None:
            mountview.enter(directories=view_dirs, devices=devices)
        os.write(ready_w, b"ok")
        os.close(ready_w)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.write(ready_w, repr(exc).encode()[:500])
        os._exit(1)
    while True:
        try:
            while os.waitpid(-1, os.WNOHANG)[0]:
                pass
        except ChildProcessError:
            pass
        signal.sigtimedwait([signal.SIGCHLD], 60)
