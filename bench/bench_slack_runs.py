"""Upload in a Slack thread -> result posted in Slack, through the whole app: signed HTTP in,
Bolt, the flows, the local pool at 2 slots, the sandbox, the run-message watcher, and a mock
Slack Web API on loopback (tests/fakes), SQLite. Against a bare ``python3 -I -S -c pass``
(the sandbox's own floor: every run starts an interpreter) measured in the same run.

- latency: one upload at a time; p50/p90 from sending the event to the ``chat.update`` that
  shows the run succeeded; ratio against the bare interpreter's p50 (target <= 2.0x).
- ``--postgres``: a private PostgreSQL (tests/servers.py) instead of SQLite.
- throughput: ``--runs`` uploads from 8 senders at once; runs/s until every run's message
  shows it succeeded (target >= 150 runs/s on 2 slots); against the pool alone at 2 slots
  (``bench_pool.pool_rate``: runs requested and recorded in a database of its own, no Slack)
  and 2 threads starting bare interpreters, both measured in the same run.

Run: .venv/bin/python bench/bench_slack_runs.py [--latency 40] [--runs 300]
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_pool import bare_rate, pool_rate
from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.fakes.openai_server import answer_json
from tests.fakes.slack_api import Call, text_of
from tests.servers import PrivatePostgres

TRIVIAL = "def run(input_path):\n    return 1\n"
_ts = itertools.count(1)


def bare_p50(times: int = 40) -> float:
    python = os.path.realpath(sys.executable)
    samples = []
    for _ in range(times):
        start = time.perf_counter()
        subprocess.run([python, "-I", "-S", "-c", "pass"], check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


class Succeeded:
    """Counts run messages updated to succeeded, scanning only calls not seen before."""

    def __init__(self) -> None:
        self.seen = 0
        self.count = 0
        self.lock = threading.Lock()

    def at_least(self, target: int) -> Any:
        def found(calls: list[Call]) -> bool:
            with self.lock:
                for call in calls[self.seen :]:
                    if call.method == "chat.update":
                        text = text_of(call)
                        if "Run `" in text and ": succeeded" in text:
                            self.count += 1
                self.seen = max(self.seen, len(calls))
                return self.count >= target

        return found


def make_task(stack: Stack) -> str:
    stack.model.queue(answer_json(code=TRIVIAL, name="one", title="One"))
    status, _ = stack.slack.command("create return one for any file")
    assert status == 200
    update = stack.mock.wait_for("chat.update")[-1]
    assert "ready" in text_of(update), text_of(update)
    return str(update.params["ts"])


def upload(stack: Stack, root_ts: str) -> None:
    file = stack.mock.host_file("x.txt", b"x", "text/plain")
    status, _ = stack.slack.event(
        {
            "type": "message",
            "subtype": "file_share",
            "channel": "C1",
            "user": "U1",
            "text": "",
            "ts": f"1800000000.{next(_ts):06d}",
            "thread_ts": root_ts,
            "files": [file],
        }
    )
    assert status == 200


def latency(stack: Stack, root_ts: str, succeeded: Succeeded, times: int) -> list[float]:
    samples = []
    for _ in range(times):
        target = succeeded.count + 1
        start = time.perf_counter()
        upload(stack, root_ts)
        stack.mock.wait_until(succeeded.at_least(target), timeout=30, what="a run succeeded")
        samples.append(time.perf_counter() - start)
    return samples


def thread_cpu() -> dict[int, tuple[str, float]]:
    """CPU-seconds so far of each live thread of this process (Linux /proc), by native id."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    tick = os.sysconf("SC_CLK_TCK")
    found = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[int(tid)] = (names.get(int(tid), "?"), (int(fields[11]) + int(fields[12])) / tick)
    return found


def throughput(
    stack: Stack, root_ts: str, succeeded: Succeeded, runs: int
) -> tuple[float, float, float]:
    """(runs/s, this process's CPU-seconds per run: app, fakes and senders, not the sandbox;
    of that, the app's own threads': Taskbot's and the ASGI server's)."""
    target = succeeded.count + runs
    before = thread_cpu()
    cpu = time.process_time()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=8) as senders:
        for _ in range(runs):
            senders.submit(upload, stack, root_ts)
    stack.mock.wait_until(succeeded.at_least(target), timeout=300, what=f"{runs} runs succeeded")
    rate, per_run = runs / (time.perf_counter() - start), (time.process_time() - cpu) / runs
    app = sum(
        used - before.get(tid, (name, 0.0))[1]
        for tid, (name, used) in thread_cpu().items()
        if name.startswith(("taskbot", "uvicorn"))
    )
    return rate, per_run, app / runs


def pool_cpu(runs: int) -> tuple[float, float]:
    """The pool alone: (runs/s, this process's CPU-seconds per run)."""
    cpu = time.process_time()
    rate, _ = pool_rate(runs, f"sqlite:///{tempfile.mkdtemp(prefix='bench-pool-')}/p.db")
    return rate, (time.process_time() - cpu) / (runs + 20)  # pool_rate warms up with 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=int, default=40)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--postgres", action="store_true", help="a private PostgreSQL, not SQLite")
    args = parser.parse_args()
    bare = bare_p50()
    pool, pool_cpu_run = pool_cpu(args.runs)
    interpreters = bare_rate()
    # One user's burst: the per-user and per-channel queue limits (fair shares) would answer
    # most of it "busy"; this measures throughput, not fairness.
    extra: dict[str, object] = {
        "log_level": "WARNING",
        "fair_user_queued_runs": 0,
        "fair_channel_queued_runs": 0,
    }
    postgres = PrivatePostgres().start() if args.postgres else None
    if postgres is not None:
        extra["database_url"] = postgres.url("postgres")
    stack = make_stack(Path(tempfile.mkdtemp(prefix="bench-slack-")), **extra)
    try:
        root_ts = make_task(stack)
        succeeded = Succeeded()
        latency(stack, root_ts, succeeded, 5)  # warm up
        samples = sorted(latency(stack, root_ts, succeeded, args.latency))
        rate, cpu_run, app_run = throughput(stack, root_ts, succeeded, args.runs)
    finally:
        close_stack(stack)
        if postgres is not None:
            postgres.close()
    bare = (bare + bare_p50()) / 2
    pool2, pool_cpu2 = pool_cpu(args.runs)
    pool, pool_cpu_run = (pool + pool2) / 2, (pool_cpu_run + pool_cpu2) / 2
    interpreters = (interpreters + bare_rate()) / 2
    p50, p90 = statistics.median(samples), samples[int(len(samples) * 0.9) - 1]
    print(
        f"upload -> result posted, one at a time: p50 {p50 * 1000:.1f} ms, p90 {p90 * 1000:.1f} ms"
    )
    print(f"baseline, python -I -S -c pass: p50 {bare * 1000:.1f} ms")
    print(f"ratio p50/baseline: {p50 / bare:.2f}x   (target <= 2.0x)")
    database = "PostgreSQL" if postgres is not None else "SQLite"
    print(
        f"throughput through Slack, 2 slots, {database}, {args.runs} uploads: {rate:.0f} runs/s"
        "   (target >= 150)"
    )
    print(f"baseline, the pool alone (SQLite, no Slack), 2 slots: {pool:.0f} runs/s")
    print(f"baseline, bare interpreters on 2 threads: {interpreters:.0f} /s")
    print(f"ratio through Slack / pool alone: {rate / pool:.2f}")
    # CPU per run hardly depends on how busy the machine is; one core runs Python's threads,
    # so 1 / (CPU per run) is the ceiling of runs/s this process can reach.
    print(
        f"CPU of this process per run: through Slack {cpu_run * 1000:.1f} ms "
        f"(app, mock Slack and senders; ceiling {1 / cpu_run:.0f} runs/s), "
        f"the pool alone {pool_cpu_run * 1000:.1f} ms; ratio {cpu_run / pool_cpu_run:.2f}"
    )
    print(
        f"  of which the app's own threads (Taskbot's and uvicorn's): {app_run * 1000:.1f} ms "
        f"(ceiling {1 / app_run:.0f} runs/s), the fakes and senders the rest"
    )


if __name__ == "__main__":
    main()
