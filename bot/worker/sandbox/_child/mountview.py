"""A minimal mount view for one run: only what Landlock lets it read, so nothing else exists.

Landlock decides what a run may open, not what it may ``stat()``: size, owner and mtime of the
database, ``.env`` and the checkout stayed visible, and ``/proc/<pid>`` showed every host
process and its owner. In its own mount namespace the slot's init (see ``pidinit``) builds a
root on a small tmpfs holding bind mounts of exactly the paths Landlock allows (interpreter,
libraries, the slot's scratch space, four devices), pivots into it and detaches the host's
tree. No ``/proc``, no ``/sys``, no ``/etc``: a path outside the view does not exist. Built
once per slot; each spare joins it with one ``setns()`` before its run arrives.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from . import linux

_ROOT_OPTIONS = "size=256k,nr_inodes=1024,mode=0755"


def _covered(path: str, bound: list[str]) -> bool:
    return any(path == b or path.startswith(b.rstrip("/") + "/") for b in bound)


def enter(*, directories: Sequence[str], devices: Sequence[str], staging: str = "/tmp") -> None:
    """Replace this process's view of the filesystem by ``directories`` and ``devices``.

    Needs CAP_SYS_ADMIN (the spare is still root); the caller's mounts stay untouched."""
    linux.unshare(linux.CLONE_NEWNS)
    linux.mount(None, "/", fstype=None, flags=linux.MS_REC | linux.MS_PRIVATE)
    # Sources are opened before the staging tmpfs may hide some of them.
    sources: list[tuple[str, int, bool]] = []
    bound: list[str] = []
    try:
        for path in sorted({os.path.realpath(p) for p in directories}):
            if _covered(path, bound) or not os.path.isdir(path):
                continue
            sources.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC), True))
            bound.append(path)
        for path in devices:
            if os.path.exists(path):
                sources.append((path, os.open(path, os.O_PATH | os.O_CLOEXEC), False))
        flags = linux.MS_NOSUID
        linux.mount("taskbot-run-root", staging, fstype="tmpfs", flags=flags, data=_ROOT_OPTIONS)
        for path, fd, is_dir in sources:
            target = staging + path
            if is_dir:
                os.makedirs(target, exist_ok=True)
            else:
                os.makedirs(os.path.dirname(target), exist_ok=True)
                os.close(os.open(target, os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            linux.mount(f"/proc/self/fd/{fd}", target, fstype=None, flags=linux.MS_BIND)
    finally:
        for _path, fd, _is_dir in sources:
            os.close(fd)
    os.chmod(staging, 0o755)
    os.chdir(staging)
    linux.pivot_root(".", ".")  # the old root ends up stacked on top; detach it
    linux.umount2(".", linux.MNT_DETACH)
    os.chdir("/")
