"""The spare: a copy of the zygote forked ahead of its run, waiting for paths and fds."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
from dataclasses import dataclass
from typing import NoReturn

from . import linux, protocol, runner
from .warm import warm_up

__all__ = ["Spare", "spare_main", "warm_up"]


@dataclass
class Spare:
    """A forked copy of the zygote waiting for its run; ready_fd hits EOF once warmed up."""

    pid: int
    channel: socket.socket
    ready_fd: int

    def ready(self, *, wait_ms: float = 0) -> bool:
        poller = select.poll()
        poller.register(self.ready_fd, select.POLLIN)
        return bool(poller.poll(wait_ms))

    def close(self) -> None:
        self.channel.close()
        os.close(self.ready_fd)


def spare_main(
    channel: socket.socket,
    ready_fd: int,
    *,
    conf: runner.Confinement,
    warm: list[str],
) -> NoReturn:
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        ruleset = runner.prepare_landlock(conf)
        keep = {channel.fileno(), ready_fd, conf.devnull_fd, ruleset, conf.view_fd, 0, 1, 2}
        for name in os.listdir("/proc/self/fd"):
            if int(name) not in keep:
                with contextlib.suppress(OSError):
                    os.close(int(name))
        if conf.view_fd is not None:  # from here on, only what the run may see exists
            runner.set_oom_score()
            linux.setns(conf.view_fd, linux.CLONE_NEWNS)
            os.close(conf.view_fd)
        # Take the copy-on-write faults of the packages' hot paths now, not during the run,
        # and only with CPU time nobody else wants (SCHED_IDLE).
        if warm:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
            for package in warm:
                with contextlib.suppress(Exception):
                    warm_up(package)
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
        os.close(ready_fd)
        data, fds, _flags, _addr = socket.recv_fds(channel, 1 << 16, 4)
        if not data or len(fds) != 3:
            os._exit(0)
        spec = runner.RunSpec.from_message(protocol.decode_message(data))
    except BaseException as exc:  # never fall back into the zygote's loop
        with contextlib.suppress(OSError):
            os.write(2, f"sandbox spare failed: {exc!r}\n".encode())
        os._exit(protocol.EXIT_SETUP_FAILED)
    runner.child_main(spec, conf, fds=fds, ruleset=ruleset)
