"""A zygote whose supervisor went away ends quietly, however the control socket says so."""

from __future__ import annotations

import select
import socket
import subprocess
import sys
from pathlib import Path

from bot.worker.sandbox import _slot
from bot.worker.sandbox._child import protocol
from bot.worker.sandbox._slot import ZYGOTE_ENV, Slot, SlotConfig


def _start_zygote(slot_dir: Path) -> tuple[subprocess.Popen[bytes], socket.socket]:
    """A zygote started as ``Slot.start`` does, but with its stderr kept for the test."""
    config = SlotConfig(
        index=0,
        python=sys.executable,
        slot_dir=slot_dir,
        uid=None,
        gid=None,
        namespaces=False,
        scratch_bytes=0,
        packages=(),
        seccomp=False,
        landlock_abi=None,
    )
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    fd = str(theirs.fileno())
    try:
        proc = subprocess.Popen(
            [sys.executable, "-I", "-c", _slot._BOOTSTRAP, _slot._CHILD_PACKAGE_DIR, fd],
            env=ZYGOTE_ENV,
            pass_fds=(theirs.fileno(),),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
    finally:
        theirs.close()
    ours.send(protocol.encode_message(Slot(config, None)._zygote_config()))
    return proc, ours


def test_reset_control_socket_ends_the_zygote_quietly(tmp_path: Path) -> None:
    """A supervisor that dies with the zygote's message unread resets the socket: the
    zygote's next receive fails with ECONNRESET instead of reading EOF."""
    proc, ctrl = _start_zygote(tmp_path)
    try:
        readable, _, _ = select.select([ctrl], [], [], 60)
        assert readable, "the zygote never said it was ready"
        ctrl.close()  # its READY still unread: what a killed supervisor leaves
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert err.decode() == ""
    assert proc.returncode == 0


def test_closed_control_socket_ends_the_zygote_quietly(tmp_path: Path) -> None:
    proc, ctrl = _start_zygote(tmp_path)
    try:
        data = ctrl.recv(1 << 16)
        assert protocol.decode_message(data)["op"] == protocol.OP_READY
        ctrl.close()  # nothing unread: the zygote reads EOF
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert err.decode() == ""
    assert proc.returncode == 0
