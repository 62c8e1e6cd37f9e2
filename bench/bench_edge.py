"""Hostile traffic at the edge of ``python -m bot serve`` (a real process, loopback):

1. Slack's ack with and without 200 slow clients holding connections: p50/p99 of signed
   ``/task help`` at 8 concurrent, phases alternating without / with, so machine noise hits
   both. The slow clients trickle a request's headers one byte a second and connect again
   whenever the server closes them (the header deadline), so 200 stay connected throughout.
   Target: p99 with them within 1.5x of p99 without.
2. Resident memory of the web process while 20 oversized requests arrive at once (10 signed-
   looking Slack POSTs streaming chunked 64 MiB bodies, 5 unsigned 256 MiB Slack POSTs, 5 API
   POSTs without a token streaming 64 MiB), sampled every 10 ms. Target: peak under idle +
   64 MiB, and every one answered 413/401 (never 500).

Run: .venv/bin/python bench/bench_edge.py [--requests 400]
"""

from __future__ import annotations

import argparse
import os
import select
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import SECRET, load, pct, wait_up
from tests.fakes.slack_api import MockSlackAPI
from tests.servers import free_port

MiB = 2**20


class SlowClients:
    """``count`` connections trickling headers a byte a second, kept at ``count``."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.closed_by_server = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._ready = threading.Event()

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port))
        sock.setblocking(False)
        return sock

    def _run(self) -> None:
        head = b"POST /slack/events HTTP/1.1\r\nHost: taskbot\r\nX-Slow: " + b"a" * 10_000
        socks = {self._open(): 0 for _ in range(self.count)}
        self._ready.set()
        while not self._stop.is_set():
            for sock in list(socks):
                readable, _, _ = select.select([sock], [], [], 0)
                gone = bool(readable)  # a 408 or the close: the server is ending it
                if not gone:
                    try:
                        sock.send(head[socks[sock] : socks[sock] + 1])
                        socks[sock] += 1
                    except OSError:
                        gone = True
                if gone:
                    sock.close()
                    del socks[sock]
                    self.closed_by_server += 1
                    socks[self._open()] = 0
            self._stop.wait(1.0)
        for sock in socks:
            sock.close()

    def __enter__(self) -> SlowClients:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def connections_of(pid: int) -> int:
    return len(psutil.Process(pid).net_connections(kind="tcp"))


def oversized(port: int, kind: str, answers: list[int], barrier: threading.Barrier) -> None:
    ts = str(int(time.time()))
    slack = f"X-Slack-Request-Timestamp: {ts}\r\nX-Slack-Signature: v0={'0' * 64}\r\n"
    heads = {
        "chunked": f"POST /slack/events HTTP/1.1\r\nHost: t\r\n{slack}"
        "Transfer-Encoding: chunked\r\n\r\n",
        "unsigned": f"POST /slack/events HTTP/1.1\r\nHost: t\r\nContent-Length: {256 * MiB}\r\n\r\n",
        "api": "POST /api/task/create HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
    }
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    chunk = b"a" * 65536
    piece = b"%x\r\n%s\r\n" % (len(chunk), chunk)
    barrier.wait()
    try:
        sock.sendall(heads[kind].encode())
        for _ in range(64 * MiB // len(chunk)):
            sock.sendall(piece if kind != "unsigned" else chunk)
    except OSError:
        pass  # the server answered and closed: the rest is never read
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except OSError:
        pass
    sock.close()
    answers.append(int(data.split()[1]) if data.startswith(b"HTTP/") else 0)


def memory_phase(pid: int, port: int) -> None:
    time.sleep(1)  # settle: what the process holds idle
    idle = psutil.Process(pid).memory_info().rss / MiB
    peak = idle
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, psutil.Process(pid).memory_info().rss / MiB)
            done.wait(0.01)

    sampler = threading.Thread(target=sample)
    sampler.start()
    answers: list[int] = []
    kinds = ["chunked"] * 10 + ["unsigned"] * 5 + ["api"] * 5
    barrier = threading.Barrier(len(kinds))
    threads = [threading.Thread(target=oversized, args=(port, k, answers, barrier)) for k in kinds]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    statuses = {s: answers.count(s) for s in sorted(set(answers))}
    print("20 oversized requests at once")
    print(f"  answers: {statuses} in {elapsed:.2f} s")
    print(
        f"  web RSS: idle {idle:.1f} MiB, peak {peak:.1f} MiB, +{peak - idle:.1f} MiB "
        f"(target < +64 MiB: {'held' if peak - idle < 64 else 'NOT held'})"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--slow", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-edge-"))
    mock = MockSlackAPI().start()
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": mock.api_url,
        "DATABASE_URL": f"sqlite:///{tmp / 'edge.db'}",
        "API_TOKEN": "edge-api",
        "OPENAI_BASE_URL": "http://127.0.0.1:9/v1",
        "LOG_LEVEL": "ERROR",
        "PORT": str(port),
    }
    subprocess.run(
        [sys.executable, "-m", "bot", "migrate"], cwd=ROOT, env=env, check=True, capture_output=True
    )
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env)
    url = f"http://127.0.0.1:{port}/slack/events"
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz")
        load(url, total=80, concurrency=8, text="help")  # warm up
        without: list[float] = []
        with_slow: list[float] = []
        held: list[int] = []
        closed = 0
        for _ in range(2):
            without += load(url, total=args.requests // 2, concurrency=8, text="help")
            with SlowClients(port, args.slow) as slow:
                time.sleep(2)
                held.append(connections_of(proc.pid))
                with_slow += load(url, total=args.requests // 2, concurrency=8, text="help")
                held.append(connections_of(proc.pid))
                closed += slow.closed_by_server
        p99_without, p99_with = pct(without, 0.99), pct(with_slow, 0.99)
        print(f"signed /task help acks, {len(without)} per phase, 8 concurrent")
        print(
            f"  without slow clients: p50 {pct(without, 0.5) * 1000:.1f} ms, "
            f"p99 {p99_without * 1000:.1f} ms"
        )
        print(
            f"  with {args.slow} slow clients: p50 {pct(with_slow, 0.5) * 1000:.1f} ms, "
            f"p99 {p99_with * 1000:.1f} ms (server held {min(held)}-{max(held)} connections; "
            f"{closed} closed by the header deadline)"
        )
        ratio = p99_with / p99_without
        print(
            f"  ratio p99 with/without: {ratio:.2f}x (target <= 1.5x: "
            f"{'held' if ratio <= 1.5 else 'NOT held'})"
        )
        memory_phase(proc.pid, port)
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        mock.stop()


if __name__ == "__main__":
    main()
