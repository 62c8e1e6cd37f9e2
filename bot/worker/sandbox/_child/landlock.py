"""Landlock through raw syscalls: filesystem, TCP and IPC-scope restrictions for a run child.

The syscall numbers are the same on every architecture (they were added after the unification).
"""

from __future__ import annotations

import ctypes
import os
import stat
from collections.abc import Sequence

from . import linux

SYS_CREATE_RULESET = 444
SYS_ADD_RULE = 445
SYS_RESTRICT_SELF = 446
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

FS_EXECUTE = 1 << 0
FS_WRITE_FILE = 1 << 1
FS_READ_FILE = 1 << 2
FS_READ_DIR = 1 << 3
FS_REMOVE_DIR = 1 << 4
FS_REMOVE_FILE = 1 << 5
FS_MAKE_CHAR = 1 << 6
FS_MAKE_DIR = 1 << 7
FS_MAKE_REG = 1 << 8
FS_MAKE_SOCK = 1 << 9
FS_MAKE_FIFO = 1 << 10
FS_MAKE_BLOCK = 1 << 11
FS_MAKE_SYM = 1 << 12
FS_REFER = 1 << 13  # ABI 2
FS_TRUNCATE = 1 << 14  # ABI 3
FS_IOCTL_DEV = 1 << 15  # ABI 5
NET_BIND_TCP = 1 << 0  # ABI 4
NET_CONNECT_TCP = 1 << 1  # ABI 4
SCOPE_ABSTRACT_UNIX_SOCKET = 1 << 0  # ABI 6
SCOPE_SIGNAL = 1 << 1  # ABI 6

_FILE_RIGHTS = FS_EXECUTE | FS_WRITE_FILE | FS_READ_FILE | FS_TRUNCATE | FS_IOCTL_DEV
READ_ONLY = FS_READ_FILE | FS_READ_DIR
READ_WRITE = (
    FS_WRITE_FILE
    | FS_READ_FILE
    | FS_READ_DIR
    | FS_REMOVE_DIR
    | FS_REMOVE_FILE
    | FS_MAKE_DIR
    | FS_MAKE_REG
    | FS_MAKE_FIFO
    | FS_MAKE_SYM
    | FS_REFER
    | FS_TRUNCATE
)
DEVICE_RW = FS_READ_FILE | FS_WRITE_FILE | FS_TRUNCATE


class _RulesetAttr(ctypes.Structure):
    _fields_ = (
        ("handled_access_fs", ctypes.c_uint64),
        ("handled_access_net", ctypes.c_uint64),
        ("scoped", ctypes.c_uint64),
    )


class _PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = (("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32))


def abi_version() -> int | None:
    """The Landlock ABI the kernel offers, or None when Landlock is off or unknown."""
    try:
        version = linux.syscall(
            SYS_CREATE_RULESET, None, 0, CREATE_RULESET_VERSION, what="landlock_create_ruleset"
        )
    except OSError:
        return None
    return version if version > 0 else None


def handled_fs(abi: int) -> int:
    rights = (1 << 13) - 1
    if abi >= 2:
        rights |= FS_REFER
    if abi >= 3:
        rights |= FS_TRUNCATE
    if abi >= 5:
        rights |= FS_IOCTL_DEV
    return rights


def _attr_size(abi: int) -> int:
    if abi >= 6:
        return 24
    return 16 if abi >= 4 else 8


def create_ruleset(*, abi: int, read_only: Sequence[str], devices_rw: Sequence[str] = ()) -> int:
    """A ruleset fd that handles every right of the ABI and allows the given paths.

    Everything outside the allowed paths becomes inaccessible once enforced; TCP bind/connect
    is denied (ABI >= 4); abstract unix sockets and signals are scoped to the domain (ABI >= 6).
    """
    attr = _RulesetAttr(
        handled_access_fs=handled_fs(abi),
        handled_access_net=(NET_BIND_TCP | NET_CONNECT_TCP) if abi >= 4 else 0,
        scoped=(SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL) if abi >= 6 else 0,
    )
    ruleset = linux.syscall(
        SYS_CREATE_RULESET,
        ctypes.c_void_p(ctypes.addressof(attr)),
        _attr_size(abi),
        0,
        what="landlock_create_ruleset",
    )
    try:
        for path in read_only:
            add_path_rule(ruleset, path, READ_ONLY & handled_fs(abi))
        for path in devices_rw:
            add_path_rule(ruleset, path, DEVICE_RW & handled_fs(abi))
    except BaseException:
        os.close(ruleset)
        raise
    return ruleset


def enforce(ruleset: int, *, read_write: Sequence[str], abi: int) -> None:
    """Add the read-write paths, then confine the calling thread for good; closes ruleset.

    Needs no_new_privs or CAP_SYS_ADMIN.
    """
    try:
        for path in read_write:
            add_path_rule(ruleset, path, READ_WRITE & handled_fs(abi))
        linux.syscall(SYS_RESTRICT_SELF, ruleset, 0, what="landlock_restrict_self")
    finally:
        os.close(ruleset)


def restrict_self(
    *,
    abi: int,
    read_only: Sequence[str],
    read_write: Sequence[str],
    devices_rw: Sequence[str] = (),
) -> None:
    ruleset = create_ruleset(abi=abi, read_only=read_only, devices_rw=devices_rw)
    enforce(ruleset, read_write=read_write, abi=abi)


def add_path_rule(ruleset: int, path: str, rights: int) -> None:
    try:
        fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        if not stat.S_ISDIR(os.fstat(fd).st_mode):
            rights &= _FILE_RIGHTS
        rule = _PathBeneathAttr(allowed_access=rights, parent_fd=fd)
        linux.syscall(
            SYS_ADD_RULE,
            ruleset,
            RULE_PATH_BENEATH,
            ctypes.c_void_p(ctypes.addressof(rule)),
            0,
            what=f"landlock_add_rule {path}",
        )
    finally:
        os.close(fd)
