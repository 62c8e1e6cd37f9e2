"""Thin ctypes wrappers for the Linux calls the stdlib of Python 3.11 lacks."""

from __future__ import annotations

import ctypes
import ctypes.util
import os

PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39

CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000
NAMESPACE_FLAGS = (
    CLONE_NEWNS,
    CLONE_NEWCGROUP,
    CLONE_NEWUTS,
    CLONE_NEWIPC,
    CLONE_NEWUSER,
    CLONE_NEWPID,
    CLONE_NEWNET,
)

MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.prctl.argtypes = [
    ctypes.c_int,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
    ctypes.c_ulong,
]
_libc.prctl.restype = ctypes.c_int
_libc.unshare.argtypes = [ctypes.c_int]
_libc.unshare.restype = ctypes.c_int
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_char_p,
]
_libc.mount.restype = ctypes.c_int
_libc.setns.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.setns.restype = ctypes.c_int
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
_libc.umount2.restype = ctypes.c_int

MNT_DETACH = 2
# glibc has no pivot_root(); the number differs per architecture.
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41, "ppc64le": 203, "s390x": 217}.get(
    os.uname().machine
)


def _checked(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def syscall(number: int, *args: int | ctypes.c_void_p | None, what: str) -> int:
    """Call a raw syscall; raise OSError on failure. Integers are passed as C longs."""
    wide = [ctypes.c_long(a) if isinstance(a, int) else a for a in args]
    return _checked(int(_libc.syscall(ctypes.c_long(number), *wide)), what)


def prctl(option: int, value: int = 0, *, arg3: int = 0) -> int:
    return _checked(_libc.prctl(option, value, arg3, 0, 0), f"prctl({option})")


def unshare(flags: int) -> None:
    _checked(_libc.unshare(flags), "unshare")


def mount(
    source: str | None, target: str, *, fstype: str | None, flags: int, data: str = ""
) -> None:
    src = source.encode() if source is not None else None
    kind = fstype.encode() if fstype is not None else None
    _checked(_libc.mount(src, target.encode(), kind, flags, data.encode()), f"mount {target}")


def setns(fd: int, nstype: int) -> None:
    _checked(_libc.setns(fd, nstype), "setns")


def umount2(target: str, flags: int) -> None:
    _checked(_libc.umount2(target.encode(), flags), f"umount {target}")


def pivot_root(new_root: str, put_old: str) -> None:
    if SYS_PIVOT_ROOT is None:
        raise OSError(38, f"pivot_root: unknown syscall number on {os.uname().machine}")
    new, old = ctypes.c_char_p(new_root.encode()), ctypes.c_char_p(put_old.encode())
    as_void = ctypes.c_void_p
    syscall(SYS_PIVOT_ROOT, ctypes.cast(new, as_void), ctypes.cast(old, as_void), what="pivot_root")
