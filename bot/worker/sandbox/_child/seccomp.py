"""A seccomp deny-list built with libseccomp through ctypes.

The filter is built once in the zygote and loaded by each run child after it dropped privileges.
Anything that opens a channel out of the run (sockets of any family), inspects or controls
other processes, or changes namespaces/mounts fails with EPERM. Foreign architectures (i386
``int 0x80`` and friends) kill the process: that is libseccomp's default for a bad arch.
"""

from __future__ import annotations

import ctypes
import errno
import os

from . import linux

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7

DENIED = (
    # Every way to get or use a socket: with no socket to be had, no family reaches anything
    # (a socketpair can sendto() any named datagram socket and pass fds with SCM_RIGHTS).
    "socket",
    "socketpair",
    "socketcall",
    "connect",
    "bind",
    "listen",
    "accept",
    "accept4",
    "sendto",
    "sendmsg",
    "sendmmsg",
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "kcmp",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "unshare",
    "setns",
    "move_mount",
    "open_tree",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "mount_setattr",
    "bpf",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "perf_event_open",
    "userfaultfd",
    "fanotify_init",
    "name_to_handle_at",
    "open_by_handle_at",
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "reboot",
    "swapon",
    "swapoff",
    "acct",
    "quotactl",
    "syslog",
    "shmget",
    "msgget",
    "semget",
    "mq_open",
    "uselib",
    "ioperm",
    "iopl",
    "lookup_dcookie",
    "vhangup",
)


PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2


class _SockFprog(ctypes.Structure):
    _fields_ = (("len", ctypes.c_ushort), ("filter", ctypes.c_void_p))


class _ArgCmp(ctypes.Structure):
    _fields_ = (
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    )


def _errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)


def _load_library() -> ctypes.CDLL:
    lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctypes.c_void_p
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_syscall_resolve_name.restype = ctypes.c_int
    lib.seccomp_rule_add_array.argtypes = [
        ctypes.c_void_p,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_rule_add_array.restype = ctypes.c_int
    lib.seccomp_export_bpf.argtypes = [ctypes.c_void_p, ctypes.c_int]
    lib.seccomp_export_bpf.restype = ctypes.c_int
    lib.seccomp_release.argtypes = [ctypes.c_void_p]
    lib.seccomp_release.restype = None
    return lib


def available() -> bool:
    """libseccomp loads and the kernel reports seccomp support."""
    try:
        _load_library()
        with open("/proc/self/status", encoding="ascii") as status:
            return any(line.startswith("Seccomp:") for line in status)
    except OSError:
        return False


class SeccompFilter:
    """A compiled filter; ``load()`` installs it on the calling thread."""

    def __init__(self) -> None:
        self._lib = _load_library()
        ctx = self._lib.seccomp_init(SCMP_ACT_ALLOW)
        if not ctx:
            raise OSError(errno.ENOMEM, "seccomp_init failed")
        self._ctx = ctypes.c_void_p(ctx)
        self.rules = 0
        for name in DENIED:
            self._deny(name, errno.EPERM)
        # glibc falls back to clone() when clone3 is missing; clone() flags can be checked.
        self._deny("clone3", errno.ENOSYS)
        for flag in linux.NAMESPACE_FLAGS:
            self._deny("clone", errno.EPERM, mask=flag)
        self._compile()

    def _deny(self, name: str, code: int, *, mask: int | None = None) -> None:
        number = self._lib.seccomp_syscall_resolve_name(name.encode())
        if number < 0:
            return  # not on this architecture
        if mask is None:
            result = self._lib.seccomp_rule_add_array(
                self._ctx, _errno_action(code), number, 0, None
            )
        else:
            cmp = (_ArgCmp * 1)(_ArgCmp(0, SCMP_CMP_MASKED_EQ, mask, mask))
            result = self._lib.seccomp_rule_add_array(
                self._ctx, _errno_action(code), number, 1, cmp
            )
        if result < 0:
            raise OSError(-result, f"seccomp_rule_add({name}) failed")
        self.rules += 1

    def _compile(self) -> None:
        """Export the BPF program once, so that each child only needs one prctl()."""
        read_end, write_end = os.pipe()
        try:
            result = self._lib.seccomp_export_bpf(self._ctx, write_end)
            os.close(write_end)
            write_end = -1
            if result < 0:
                raise OSError(-result, "seccomp_export_bpf failed")
            program = b""
            while chunk := os.read(read_end, 1 << 16):
                program += chunk
        finally:
            os.close(read_end)
            if write_end >= 0:
                os.close(write_end)
        self._lib.seccomp_release(self._ctx)
        self.instructions = len(program) // 8
        self._buffer = ctypes.create_string_buffer(program, len(program))
        self._prog = _SockFprog(self.instructions, ctypes.addressof(self._buffer))

    def load(self) -> None:
        """Install the filter; no_new_privs must already be set."""
        linux.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, arg3=ctypes.addressof(self._prog))
