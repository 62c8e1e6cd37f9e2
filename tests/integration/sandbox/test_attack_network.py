"""Attack: reach the network (TCP/UDP anywhere, loopback services, unix sockets)."""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.worker.sandbox import Sandbox

from .conftest import assert_healthy, run

PROBE = """
import socket, json

def attempt(fn):
    try:
        fn()
        return "REACHED"
    except OSError as exc:
        return type(exc).__name__

def tcp(host, port):
    def go():
        s = socket.create_connection((host, port), timeout=1)
        s.close()
    return go

def udp(host, port):
    def go():
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b"x", (host, port))
    return go

def unix(path):
    def go():
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(path)
    return go

def family(fam, kind):
    def go():
        socket.socket(fam, kind)
    return go

def run(p):
    return {
        "pg_tcp": attempt(tcp("127.0.0.1", 5432)),
        "redis_tcp": attempt(tcp("127.0.0.1", 6379)),
        "redis_tcp6": attempt(tcp("::1", 6379)),
        "listener": attempt(tcp("127.0.0.1", LISTEN_PORT)),
        "outside": attempt(tcp("1.1.1.1", 443)),
        "udp_dns": attempt(udp("8.8.8.8", 53)),
        "udp_local": attempt(udp("127.0.0.1", LISTEN_PORT)),
        "pg_unix": attempt(unix("/var/run/postgresql/.s.PGSQL.5432")),
        "abstract": attempt(unix(ABSTRACT)),
        "netlink": attempt(family(socket.AF_NETLINK, socket.SOCK_RAW)),
        "packet": attempt(family(socket.AF_PACKET, socket.SOCK_RAW)),
        "bind": attempt(lambda: socket.socket().bind(("0.0.0.0", 8080))),
    }
"""


@pytest.fixture
def listeners() -> Iterator[tuple[int, bytes, list[socket.socket]]]:
    tcp = socket.create_server(("127.0.0.1", 0))
    port = tcp.getsockname()[1]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", port))
    name = b"\0taskbot-test-" + secrets.token_hex(6).encode()
    abstract = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    abstract.bind(name)
    abstract.listen()
    sockets = [tcp, udp, abstract]
    for s in sockets:
        s.setblocking(False)
    yield port, name, sockets
    for s in sockets:
        s.close()


def test_no_network_of_any_kind(
    sandbox: Sandbox, listeners: tuple[int, bytes, list[socket.socket]]
) -> None:
    port, name, sockets = listeners
    code = PROBE.replace("LISTEN_PORT", str(port)).replace("ABSTRACT", repr(name.decode()))
    result = run(sandbox, code)
    assert result.status == "succeeded", result
    outcome = json.loads(result.result)
    assert len(outcome) == 12
    assert all(value == "PermissionError" for value in outcome.values()), outcome
    for s in sockets:  # nothing arrived at the host's listeners
        with pytest.raises(BlockingIOError):
            s.accept() if s.type == socket.SOCK_STREAM else s.recv(1)
    assert_healthy(sandbox)


def test_namespace_and_userns_escapes_denied(sandbox: Sandbox) -> None:
    code = (
        "import ctypes, os\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "def run(p):\n"
        "    out = {}\n"
        "    for name, flag in [('user', 0x10000000), ('net', 0x40000000), ('mnt', 0x20000)]:\n"
        "        out[name] = (libc.unshare(flag), ctypes.get_errno())\n"
        "    return out\n"
    )
    result = run(sandbox, code)
    outcome = json.loads(result.result)
    assert all(ret == -1 and err == 1 for ret, err in outcome.values()), outcome  # EPERM
    assert_healthy(sandbox)


SOCKETPAIR_PROBE = """
import array, ctypes, os, socket

libc = ctypes.CDLL(None, use_errno=True)

def attempt(fn):
    try:
        fn()
        return "REACHED"
    except OSError as exc:
        return type(exc).__name__

def dgram_sendto():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.sendto(b"via-socketpair", TARGET)

def dgram_connect():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
    a.connect(TARGET)
    a.send(b"via-connect")

def pass_fd():
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    socket.send_fds(a, [b"fd"], [0])

def raw_socketpair():
    fds = (ctypes.c_int * 2)()
    if libc.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM, 0, fds) != 0:
        raise OSError(ctypes.get_errno(), "socketpair")

def run(p):
    return {
        "sendto": attempt(dgram_sendto),
        "connect": attempt(dgram_connect),
        "pass_fd": attempt(pass_fd),
        "raw": attempt(raw_socketpair),
    }
"""


def test_no_socket_by_any_syscall_reaches_a_host_datagram_socket(sandbox: Sandbox) -> None:
    """Like /dev/log or journald's socket: a named datagram socket anybody may write to."""
    folder = Path(tempfile.mkdtemp(prefix="taskbot-devlog-", dir="/tmp"))
    folder.chmod(0o755)
    path = folder / "log"
    host = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    host.bind(str(path))
    path.chmod(0o777)
    host.setblocking(False)
    try:
        result = run(sandbox, SOCKETPAIR_PROBE.replace("TARGET", repr(str(path))))
        assert result.status == "succeeded", result
        outcome = json.loads(result.result)
        assert outcome == dict.fromkeys(("sendto", "connect", "pass_fd", "raw"), "PermissionError")
        with pytest.raises(BlockingIOError):
            host.recv(64)  # nothing arrived
    finally:
        host.close()
        shutil.rmtree(folder)
    assert_healthy(sandbox)
