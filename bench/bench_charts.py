"""A chart task warm in the sandbox against a cold interpreter, and what each package costs a
zygote (run: python bench/bench_charts.py).

Prints, all measured in this run:
  * a chart task (read a CSV with pandas, draw a bar chart with matplotlib, save a PNG) through
    Sandbox.run with the base set warm, against the same work in a cold `python -I` (its
    matplotlib font cache already built, so the baseline is as fast as it gets);
  * for the old set (numpy, pandas), each package added to it, and the whole base set: the
    sandbox's start (all zygotes ready) and the zygote's and its spare's memory (RSS, and PSS:
    pages shared between the zygote and its spare counted once, split between them).
  * the same chart in CPU time (the machine is shared: wall time waits for other work, and a
    run is niced to 10, a cold interpreter is not): the cold interpreter's, the run's own
    (process_time inside run()), what the sandbox charges the run (its cgroup: the run and the
    next spare's warm-up), and the chart's own cost in this warm interpreter (the floor);
  * what the zygote's warm-up draw costs a zygote's memory and saves a run's first chart.
Target: chart warm <= 0.05x cold. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_sandbox import check, ms, percentile, timed
from bot.worker.sandbox import Sandbox
from bot.worker.sandbox.sandbox import BASE_PACKAGES

CHART = """
import time

import matplotlib.pyplot as plt
import pandas as pd

def run(input_path):
    started = time.process_time()
    df = pd.read_csv(input_path)
    totals = df.groupby('month', sort=False)['sales'].sum()
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    ax.bar(totals.index, totals.values)
    ax.set_title('Sales per month')
    ax.set_xlabel('month')
    ax.set_ylabel('sales (EUR)')
    fig.tight_layout()
    fig.savefig('output/sales.png')
    plt.close(fig)
    return {'months': len(totals), 'cpu': time.process_time() - started}
"""
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
CSV = "month,sales\n" + "".join(f"{MONTHS[i % 12]},{i * 7 % 101}\n" for i in range(500))
OLD_SET = ("numpy", "pandas")


def bench_chart(runs: int, cold_runs: int, gap: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "sales.csv"
        csv.write_text(CSV)
        warm: list[float] = []
        paced: list[float] = []
        own_cpu: list[float] = []  # the run's process, inside run()
        charged: list[float] = []  # what the sandbox reports (its cgroup)

        def sandboxed(box: Sandbox, into: list[float]) -> None:
            started = time.perf_counter()
            result = box.run(code=CHART, input_path=csv)
            into.append(time.perf_counter() - started)
            assert result.status == "succeeded", (result.error_message, result.stderr)
            own_cpu.append(float(json.loads(result.result)["cpu"]))
            charged.append(result.cpu_seconds)

        with Sandbox(slots=1, packages=BASE_PACKAGES) as box:
            first = box.run(code=CHART, input_path=csv)
            assert first.status == "succeeded", (first.error_message, first.stderr)
            assert any(f.name == "sales.png" for f in first.output_files)
            for _ in range(runs):  # back to back: the next spare is often still warming up
                sandboxed(box, warm)
            for _ in range(runs):  # as uploads arrive, a moment apart: a warm spare waits
                time.sleep(gap)
                sandboxed(box, paced)
        out = Path(tmp) / "out"
        out.mkdir()
        cold_code = CHART.replace("output/", f"{out}/") + f"\nprint(run({str(csv)!r}))\n"
        env = {"MPLCONFIGDIR": str(Path(tmp) / "mpl"), "MPLBACKEND": "Agg", "PATH": "/usr/bin"}
        cold_cmd = [sys.executable, "-I", "-c", cold_code]
        subprocess.run(cold_cmd, check=True, stdout=subprocess.DEVNULL, env=env)  # font cache
        cold: list[float] = []
        cold_cpu: list[float] = []

        def cold_once() -> None:
            subprocess.run(cold_cmd, check=True, stdout=subprocess.DEVNULL, env=env)

        for _ in range(cold_runs):
            before = _children_cpu()
            cold.append(timed(cold_once))
            cold_cpu.append(_children_cpu() - before)
        floor, floor_cpu = _in_process(Path(tmp), csv, runs)
    med_w, med_p, med_c = (statistics.median(x) for x in (warm, paced, cold))
    print(f"chart task (read_csv, groupby, bar chart, savefig PNG), {runs} warm / {cold_runs} cold")
    print(f"  sandbox, back to back  median {ms(med_w)}  p95 {ms(percentile(warm, 0.95))}")
    print(f"  sandbox, {gap:.1f} s apart   median {ms(med_p)}  p95 {ms(percentile(paced, 0.95))}")
    print(f"  cold python            median {ms(med_c)}  p95 {ms(percentile(cold, 0.95))}")
    med_f = statistics.median(floor)
    print(f"  the same in this process (imports done, no sandbox): median {ms(med_f)}")
    print(f"  floor ratio (drawing alone vs cold)  {med_f / med_c:5.3f}x")
    for label, value in (("back to back", med_w), ("apart", med_p)):
        ratio = value / med_c
        print(f"  ratio {label:12}     {ratio:5.3f}x (target <= 0.05x: {check(ratio <= 0.05)})")
    cpu_c = statistics.median(cold_cpu)
    print("  CPU time (user + system), medians:")
    for label, values in (
        ("cold python, whole process", cold_cpu),
        ("the run's own (inside run())", own_cpu),
        ("charged to the run (cgroup)", charged),
        ("the floor (this process)", floor_cpu),
    ):
        value = statistics.median(values)
        print(f"    {label:30} {ms(value)}  {value / cpu_c:5.3f}x of cold")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _in_process(tmp: Path, csv: Path, runs: int) -> tuple[list[float], list[float]]:
    """The chart's own cost: its code in this warm interpreter, no sandbox, no fork."""
    import matplotlib

    matplotlib.use("Agg")
    work = tmp / "inproc"
    (work / "output").mkdir(parents=True)
    here = os.getcwd()
    os.chdir(work)
    try:
        scope: dict[str, object] = {}
        exec(CHART, scope)  # our own benchmark code
        draw: Any = scope["run"]
        draw(str(csv))
        walls: list[float] = []
        cpus: list[float] = []
        for _ in range(runs):
            started = time.perf_counter()
            cpus.append(float(draw(str(csv))["cpu"]))
            walls.append(time.perf_counter() - started)
        return walls, cpus
    finally:
        os.chdir(here)


# In a fresh interpreter: the base set imported and warmed as a zygote does, all but
# matplotlib's draw; then a forked child's first chart (fonts released as in a run), the draw,
# and another child's first chart. Prints JSON: memory before/after the draw, the two charts.
_WARM_DRAW_PROBE = """
import importlib, json, os, sys, time
sys.path.insert(0, sys.argv[1])
os.chdir(sys.argv[2])
from bench.bench_charts import CHART, BASE_PACKAGES, _memory
from bot.worker.sandbox._child import warm
for package in BASE_PACKAGES:
    importlib.import_module(package)
    if package != "matplotlib":
        warm.warm_up(package)
import matplotlib.pyplot

def first_chart():
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        warm.release_handles()
        scope = {}
        exec(CHART, scope)
        os.write(write, json.dumps(scope["run"]("sales.csv")["cpu"]).encode())
        os._exit(0)
    os.close(write)
    cpu = float(os.read(read, 100))
    os.close(read)
    os.waitpid(pid, 0)
    return cpu

rounds = int(sys.argv[3])
before = _memory(os.getpid())
without = [first_chart() for _ in range(rounds)]
warm.warm_up("matplotlib")
after = _memory(os.getpid())
with_draw = [first_chart() for _ in range(rounds)]
print(json.dumps({"before": before, "after": after, "without": without, "with": with_draw}))
"""


def bench_warm_draw(rounds: int) -> None:
    """What the zygote's matplotlib warm-up draw costs its memory and saves a run's chart."""
    root = Path(__file__).resolve().parent.parent
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "output").mkdir()
        (Path(tmp) / "sales.csv").write_text(CSV)
        env = {"MPLBACKEND": "Agg", "MPLCONFIGDIR": str(Path(tmp) / "mpl"), "PATH": "/usr/bin"}
        cmd = [sys.executable, "-I", "-c", _WARM_DRAW_PROBE, str(root), tmp, str(rounds)]
        found = json.loads(subprocess.run(cmd, check=True, capture_output=True, env=env).stdout)
    (rss0, pss0), (rss1, pss1) = found["before"], found["after"]
    without, with_draw = statistics.median(found["without"]), statistics.median(found["with"])
    print(f"the zygote's warm-up draw (base set imported; median of {rounds} forked first charts)")
    print(
        f"  memory without / with it   RSS {rss0 / 1024:6.1f} / {rss1 / 1024:6.1f} MiB"
        f"  (+{(rss1 - rss0) / 1024:.1f})   PSS {pss0 / 1024:6.1f} / {pss1 / 1024:6.1f} MiB"
    )
    print(
        f"  a run's first chart, CPU          {ms(without)} without / {ms(with_draw)} with"
        f"  ({without / with_draw:4.2f}x)"
    )


def _memory(pid: int) -> tuple[int, int]:
    """(RSS, PSS) in KiB."""
    values = {}
    with open(f"/proc/{pid}/smaps_rollup", encoding="ascii") as fh:
        for line in fh:
            parts = line.split()
            if parts and parts[0] in ("Rss:", "Pss:"):
                values[parts[0]] = int(parts[1])
    return values["Rss:"], values["Pss:"]


def _children(pid: int) -> list[int]:
    with open(f"/proc/{pid}/task/{pid}/children", encoding="ascii") as fh:
        return [int(p) for p in fh.read().split()]


def zygote_cost(packages: tuple[str, ...]) -> tuple[float, tuple[int, int], tuple[int, int]]:
    started = time.perf_counter()
    with Sandbox(slots=1, packages=packages) as box:
        ready = time.perf_counter() - started
        box.run(code="def run(p):\n    return 1\n", input_path=None)  # a spare forked and warm
        time.sleep(0.5)  # let the spare finish warming up (SCHED_IDLE)
        proc = box._slots[0].proc
        assert proc is not None
        zygote = proc.pid
        found = [p for p in [zygote, *_children(zygote)] if os.path.exists(f"/proc/{p}")]
        # In a PID namespace the zygote's children are its init and the spare; take the
        # biggest other process as the spare.
        sizes = sorted((_memory(p) for p in found[1:]), reverse=True)
        return ready, _memory(zygote), sizes[0] if sizes else (0, 0)


def bench_memory(rounds: int) -> None:
    sets: list[tuple[str, tuple[str, ...]]] = [("numpy, pandas (before)", OLD_SET)]
    sets += [(f"  + {p}", (*OLD_SET, p)) for p in BASE_PACKAGES if p not in OLD_SET]
    sets.append(("base set (now)", BASE_PACKAGES))
    print(f"zygote per package set (1 slot; start = all zygotes ready, median of {rounds})")
    print(f"  {'set':26} | {'start':>9} | zygote RSS / PSS MiB | spare RSS / PSS MiB")
    for label, packages in sets:
        found = [zygote_cost(packages) for _ in range(rounds)]
        start = statistics.median(f[0] for f in found)
        _, (z_rss, z_pss), (s_rss, s_pss) = found[-1]
        print(
            f"  {label:26} | {ms(start)} | {z_rss / 1024:8.1f} / {z_pss / 1024:6.1f}   "
            f"| {s_rss / 1024:7.1f} / {s_pss / 1024:6.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=40)
    parser.add_argument("--cold-runs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gap", type=float, default=0.5)
    args = parser.parse_args()
    print(f"python {sys.executable}, {os.cpu_count()} cpus")
    bench_chart(args.runs, args.cold_runs, args.gap)
    bench_warm_draw(args.rounds * 3)
    bench_memory(args.rounds)


if __name__ == "__main__":
    main()
