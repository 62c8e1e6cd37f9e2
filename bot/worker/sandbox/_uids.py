"""Lease unprivileged uids for the slots, one per slot, exclusive across processes.

Two worker processes on one host must never share a slot uid: the cleanup kills every process
of the uid. A lease is an flock on a root-only lock file, held for the Sandbox's lifetime.
"""

from __future__ import annotations

import fcntl
import grp
import os
import pwd
from pathlib import Path

UID_BASE = 61000
UID_SPAN = 2000
LOCK_DIR = Path("/run/taskbot-sandbox")


def _unowned(uid: int) -> bool:
    for lookup in (pwd.getpwuid, grp.getgrgid):
        try:
            lookup(uid)
        except KeyError:
            continue
        return False
    return True


class UidLease:
    def __init__(self, count: int, *, base: int = UID_BASE, lock_dir: Path = LOCK_DIR) -> None:
        self.uids: list[int] = []
        self._fds: list[int] = []
        lock_dir.mkdir(mode=0o700, exist_ok=True)
        os.chmod(lock_dir, 0o700)
        for uid in range(base, base + UID_SPAN):
            if len(self.uids) == count:
                break
            if not _unowned(uid):
                continue
            fd = os.open(lock_dir / f"uid-{uid}.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            self.uids.append(uid)
            self._fds.append(fd)
        if len(self.uids) < count:
            self.release()
            raise RuntimeError(f"no free sandbox uid in {base}..{base + UID_SPAN}")

    def release(self) -> None:
        for fd in self._fds:
            os.close(fd)
        self._fds.clear()


def uid_in_use(uid: int, *, lock_dir: Path = LOCK_DIR) -> bool:
    """Is some live process holding the lease of `uid`?"""
    try:
        fd = os.open(lock_dir / f"uid-{uid}.lock", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
