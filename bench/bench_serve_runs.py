"""Upload in a Slack thread -> result posted in Slack, through ``python -m bot serve`` as an
operator runs it on one machine: its web process and its flow process (the local pool at 2
slots, the sandbox, the run-message watcher), SQLite. Slack and the model are fakes on loopback
in this process (``tests/fakes``), as the senders are: they stand for machines of their own, so
the app's processes have their interpreters to themselves. ``bench_slack_runs.py`` measures
the same path with everything in one process.

- latency: one upload at a time; p50/p90 from sending the event to the ``chat.update`` that
  shows the run succeeded; against a bare ``python3 -I -S -c pass`` measured in the same run
  (target <= 2.0x).
- throughput: ``--runs`` uploads from 8 senders at once; runs/s until every run's message shows
  it succeeded (target >= 150 runs/s on 2 slots); against the pool alone at 2 slots
  (``bench_pool.pool_rate``) measured in the same run; and the CPU per run of the app's own
  processes, the sandbox's, and this process's (fakes and senders).

Run: .venv/bin/python bench/bench_serve_runs.py [--latency 60] [--runs 600]
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_ack import free_port, wait_up
from bench.bench_pool import machine_busy, pool_rate
from bench.bench_slack_runs import TRIVIAL, Succeeded, bare_p50, latency, throughput
from tests.fakes.openai_server import FakeOpenAIServer, answer_json
from tests.fakes.slack_api import MockSlackAPI, text_of
from tests.fakes.slack_requests import SlackSender

SECRET = "bench-secret"
TICK = os.sysconf("SC_CLK_TCK")


class Served(NamedTuple):
    """What ``bench_slack_runs.latency`` and ``throughput`` drive: the mock and a sender."""

    mock: MockSlackAPI
    slack: SlackSender


def process_cpu(web: int) -> tuple[float, float, float, float]:
    """CPU-seconds so far of this process's descendants: (the web process ``web``, its flow
    process, the flow process's pool process, the sandbox's: its zygotes with every run they
    forked and reaped)."""
    parents: dict[int, int] = {}
    used: dict[int, float] = {}
    reaped: dict[int, float] = {}
    zygotes: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        pid = int(entry)
        parents[pid] = int(stat[1])
        used[pid] = (int(stat[11]) + int(stat[12])) / TICK
        reaped[pid] = (int(stat[13]) + int(stat[14])) / TICK
        if b"_child.zygote" in cmdline:
            zygotes.add(pid)

    def under(pid: int, root: int) -> bool:
        while pid > 1:
            if pid == root:
                return True
            pid = parents.get(pid, 1)
        return False

    edge = flow = pool = sandbox = 0.0
    for pid, cpu in used.items():
        if pid == os.getpid() or not under(pid, os.getpid()):
            continue
        if any(under(pid, z) for z in zygotes):
            sandbox += cpu + (reaped[pid] if pid in zygotes else 0.0)
        elif pid == web:
            edge += cpu
        elif parents[pid] == web:
            flow += cpu
        else:
            pool += cpu
    return edge, flow, pool, sandbox


def pool_alone(runs: int) -> tuple[float, float]:
    """The pool alone at 2 slots: (runs/s, the machine's busy CPU-seconds per run)."""
    busy: list[float] = []
    rate, _ = pool_rate(runs, f"sqlite:///{tempfile.mkdtemp(prefix='bench-pool-')}/p.db", busy=busy)
    return rate, busy[0]


def start_serve(
    tmp: Path, mock: MockSlackAPI, model: FakeOpenAIServer
) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": str(ROOT),
        "SLACK_BOT_TOKEN": "xoxb-test",
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": mock.api_url,
        "OPENAI_BASE_URL": model.base_url,
        "OPENAI_MAX_RETRIES": "0",
        "DATABASE_URL": f"sqlite:///{tmp / 'serve.db'}",
        "WORKER_CONCURRENCY": "2",
        "LOG_LEVEL": "WARNING",
        "PORT": str(port),
        # One user's burst: fair shares would answer most of it "busy"; this measures
        # throughput, not fairness.
        "FAIR_USER_QUEUED_RUNS": "0",
        "FAIR_CHANNEL_QUEUED_RUNS": "0",
    }
    proc = subprocess.Popen([sys.executable, "-m", "bot", "serve"], cwd=ROOT, env=env)
    try:
        wait_up(f"http://127.0.0.1:{port}/healthz")
    except BaseException:
        stop(proc)
        raise
    return proc, f"http://127.0.0.1:{port}/slack/events"


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:  # serve waits for its flow process to finish what it took
        proc.wait(timeout=40)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def make_task(served: Served) -> str:
    status, _ = served.slack.command("create return one for any file")
    assert status == 200
    update = served.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "chat.update" and "ready" in text_of(c)],
        timeout=60,
        what="the task ready",
    )[-1]
    return str(update.params["ts"])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=int, default=60)
    parser.add_argument("--runs", type=int, default=600)
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # `timeout`: serve stops too
    bare = bare_p50()
    pool, pool_busy = pool_alone(args.runs)
    tmp = Path(tempfile.mkdtemp(prefix="bench-serve-"))
    mock, model = MockSlackAPI().start(), FakeOpenAIServer().start()
    model.reply_by_default(answer_json(code=TRIVIAL, name="one", title="One"))
    proc, url = start_serve(tmp, mock, model)
    try:
        served = Served(mock, SlackSender(url, SECRET, response_base=mock.base))
        root_ts = make_task(served)
        succeeded = Succeeded()
        latency(served, root_ts, succeeded, 10)  # warm up
        samples = sorted(latency(served, root_ts, succeeded, args.latency))
        before = process_cpu(proc.pid)
        own0, busy0 = time.process_time(), machine_busy()
        rate, _, _ = throughput(served, root_ts, succeeded, args.runs)
        busy = (machine_busy() - busy0) / args.runs
        after = process_cpu(proc.pid)
        own = (time.process_time() - own0) / args.runs
    finally:
        stop(proc)
        mock.stop()
        model.stop()
    bare = (bare + bare_p50()) / 2
    pool2, pool_busy2 = pool_alone(args.runs)
    pool, pool_busy = (pool + pool2) / 2, (pool_busy + pool_busy2) / 2
    web, flow, pool_process, sandbox = (
        (b - a) / args.runs for a, b in zip(before, after, strict=True)
    )
    p50, p90 = samples[len(samples) // 2], samples[int(len(samples) * 0.9) - 1]
    print(
        f"upload -> result posted, through serve, one at a time: p50 {p50 * 1000:.1f} ms, "
        f"p90 {p90 * 1000:.1f} ms"
    )
    print(f"baseline, python -I -S -c pass: p50 {bare * 1000:.1f} ms")
    print(f"ratio p50/baseline: {p50 / bare:.2f}x   (target <= 2.0x)")
    print(
        f"throughput through serve, 2 slots, SQLite, {args.runs} uploads: {rate:.0f} runs/s"
        "   (target >= 150)"
    )
    print(f"baseline, the pool alone (SQLite, no Slack), 2 slots: {pool:.0f} runs/s")
    print(f"ratio through serve / pool alone: {rate / pool:.2f}")
    print(
        f"CPU per run: the web process {web * 1000:.1f} ms, the flow process {flow * 1000:.1f} ms"
        f" (its ceiling {1 / flow:.0f} runs/s), the pool process {pool_process * 1000:.1f} ms, "
        f"the sandbox {sandbox * 1000:.1f} ms, this process (mock Slack, model, senders) "
        f"{own * 1000:.1f} ms"
    )
    cores = os.cpu_count() or 1
    print(
        f"the machine's busy CPU per run: through serve {busy * 1000:.1f} ms (ceiling on {cores} "
        f"cores {cores / busy:.0f} runs/s), the pool alone {pool_busy * 1000:.1f} ms (ceiling "
        f"{cores / pool_busy:.0f} runs/s)"
    )


if __name__ == "__main__":
    main()
