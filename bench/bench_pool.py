"""Runs per second through the local pool at 2 slots, each run recorded in the database
(queued -> running -> succeeded, with its result), against 2 threads doing nothing but
``Popen([python, "-I", "-S", "-c", "pass"]).wait()`` in the same run.

Run: .venv/bin/python bench/bench_pool.py [--runs 600]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.composition import build_services
from bot.config import Settings
from storage import migrate
from storage.db import make_engine
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

TRIVIAL = "def run(input_path):\n    return 1\n"


def bare_rate(seconds: float = 3.0, threads: int = 2) -> float:
    python = os.path.realpath(sys.executable)
    count = 0
    lock = threading.Lock()
    stop = time.monotonic() + seconds

    def loop() -> None:
        nonlocal count
        while time.monotonic() < stop:
            subprocess.Popen([python, "-I", "-S", "-c", "pass"]).wait()
            with lock:
                count += 1

    workers = [threading.Thread(target=loop) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return count / seconds


def machine_busy() -> float:
    """CPU-seconds the whole machine spent busy so far (every core, every process)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")  # not idle, iowait


def pool_rate(
    runs: int, database_url: str, *, busy: list[float] | None = None
) -> tuple[float, int]:
    """(runs/s, how many succeeded); ``busy`` gets the machine's busy CPU-seconds per run of
    the timed part (not the start-up, zygotes included, nor the warm-up)."""
    # One user queues them all: no fair-share limit, this measures the pool's throughput.
    settings = Settings(
        database_url=database_url,
        worker_concurrency=2,
        log_level="WARNING",
        fair_user_queued_runs=0,
        fair_channel_queued_runs=0,
    )
    engine = make_engine(database_url)
    migrate.upgrade(engine)
    model = FakeCodeGenerator(answer_json(code=TRIVIAL, name="trivial"))
    services = build_services(settings, engine=engine, generator=model, runner="local")
    try:
        task = services.tasks.create(
            description="one", task_type="generator", requested_by="b", source="cli"
        ).task
        for _ in range(20):  # warm up
            services.runs.request(task.id, requested_by="b")
        assert services.pool is not None
        services.pool.wait_idle()
        start, busy0 = time.perf_counter(), machine_busy()
        ids = [services.runs.request(task.id, requested_by="b").id for _ in range(runs)]
        services.pool.wait_idle()
        elapsed = time.perf_counter() - start
        if busy is not None:
            busy.append((machine_busy() - busy0) / runs)
        ok = sum(1 for run_id in ids if services.runs.get(run_id).status == "succeeded")
        return runs / elapsed, ok
    finally:
        services.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=600)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-pool-"))
    baseline = bare_rate()
    rate, ok = pool_rate(args.runs, f"sqlite:///{tmp / 'pool.db'}")
    after = bare_rate()
    bare = (baseline + after) / 2
    print(
        f"local pool, 2 slots, SQLite: {rate:.0f} runs/s ({ok}/{args.runs} succeeded, each queued, "
        "claimed, sandboxed and recorded)"
    )
    print(f"baseline, 2 threads of Popen(python -I -S -c pass): {bare:.0f} starts/s")
    print(f"ratio pool/baseline: {rate / bare:.2f}x   (target >= 150 runs/s)")


if __name__ == "__main__":
    main()
