"""Benchmark the sandbox against plain interpreter start-up (run: python bench/bench_sandbox.py).

Prints, all measured in this run:
  * trivial task through Sandbox.run (1 slot) vs Popen(python -I -S -c pass).wait(): median, p95;
  * a pandas task warm through the sandbox vs cold (python -I -c "import pandas; ...");
  * runs per second of the trivial task with 2 slots driven by 4 threads.
Targets: median <= 1.0x, p95 <= 1.5x, pandas <= 0.05x, >= 150 runs/s. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.worker.sandbox import Sandbox, SandboxLimits

TRIVIAL = "def run(p):\n    return 1\n"
PANDAS = (
    "import pandas as pd\n"
    "def run(input_path):\n"
    "    df = pd.read_csv(input_path)\n"
    "    return df.describe().to_dict()\n"
)
CSV = "city,sales,units\n" + "".join(f"c{i % 7},{i * 3.5},{i % 11}\n" for i in range(200))


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def ms(value: float) -> str:
    return f"{value * 1e3:7.2f} ms"


def check(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def bench_latency(runs: int) -> None:
    real_python = os.path.realpath(sys.executable)
    baseline_cmd = [real_python, "-I", "-S", "-c", "pass"]
    sandboxed: list[float] = []
    baseline: list[float] = []
    with Sandbox(slots=1) as box:
        for _ in range(20):  # warm-up
            box.run(code=TRIVIAL, input_path=None)
            subprocess.Popen(baseline_cmd).wait()
        for _ in range(runs):  # interleaved, so both see the same machine state
            sandboxed.append(timed(lambda: box.run(code=TRIVIAL, input_path=None)))
            baseline.append(timed(lambda: subprocess.Popen(baseline_cmd).wait()))
    med_s, p95_s = statistics.median(sandboxed), percentile(sandboxed, 0.95)
    med_b, p95_b = statistics.median(baseline), percentile(baseline, 0.95)
    print(f"trivial task, {runs} runs each (1 slot)")
    print(f"  sandbox  median {ms(med_s)}  p95 {ms(p95_s)}")
    print(f"  baseline median {ms(med_b)}  p95 {ms(p95_b)}   ({' '.join(baseline_cmd)})")
    print(f"  ratio    median {med_s / med_b:5.2f}x (target <= 1.0x: {check(med_s <= med_b)})")
    p95_ok = check(p95_s <= 1.5 * p95_b)
    print(f"           p95    {p95_s / p95_b:5.2f}x (target <= 1.5x: {p95_ok})")


def bench_pandas(runs: int, cold_runs: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "sales.csv"
        csv.write_text(CSV)
        warm: list[float] = []
        with Sandbox(slots=1) as box:
            first = box.run(code=PANDAS, input_path=csv)
            assert first.status == "succeeded", first
            for _ in range(runs):
                warm.append(timed(lambda: box.run(code=PANDAS, input_path=csv)))
        cold_code = (
            "import json, pandas as pd\n"
            f"print(json.dumps(pd.read_csv({str(csv)!r}).describe().to_dict()))\n"
        )
        cold_cmd = [sys.executable, "-I", "-c", cold_code]
        cold = [
            timed(lambda: subprocess.run(cold_cmd, check=True, stdout=subprocess.DEVNULL))
            for _ in range(cold_runs)
        ]
    med_w, med_c = statistics.median(warm), statistics.median(cold)
    print(f"pandas task (read_csv + describe().to_dict()), {runs} warm / {cold_runs} cold runs")
    print(f"  sandbox (warm) median {ms(med_w)}  p95 {ms(percentile(warm, 0.95))}")
    print(f"  cold python    median {ms(med_c)}  p95 {ms(percentile(cold, 0.95))}")
    ratio = med_w / med_c
    print(f"  ratio          median {ratio:5.3f}x (target <= 0.05x: {check(ratio <= 0.05)})")


def bench_throughput(seconds: float, threads: int) -> None:
    counts = [0] * threads
    failures = [0] * threads
    with Sandbox(slots=2, limits=SandboxLimits()) as box:
        for _ in range(10):
            box.run(code=TRIVIAL, input_path=None)
        stop = time.monotonic() + seconds

        def drive(index: int) -> None:
            while time.monotonic() < stop:
                result = box.run(code=TRIVIAL, input_path=None)
                counts[index] += 1
                failures[index] += result.status != "succeeded"

        started = time.monotonic()
        workers = [threading.Thread(target=drive, args=(i,)) for i in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        elapsed = time.monotonic() - started
    rate = sum(counts) / elapsed
    print(f"throughput, trivial task, 2 slots, {threads} threads, {elapsed:.1f} s")
    print(f"  {sum(counts)} runs, {sum(failures)} not succeeded: {rate:6.1f} runs/s")
    print(f"  (target >= 150 runs/s: {check(rate >= 150)})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--pandas-runs", type=int, default=60)
    parser.add_argument("--cold-runs", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    print(f"python {sys.executable}, {os.cpu_count()} cpus")
    bench_latency(args.runs)
    bench_pandas(args.pandas_runs, args.cold_runs)
    bench_throughput(args.seconds, args.threads)


if __name__ == "__main__":
    main()
