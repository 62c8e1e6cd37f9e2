"""A chart task warm in the sandbox against a cold interpreter, and what each package costs a
zygote (run: python bench/bench_charts.py).

Prints, all measured in this run:
  * a chart task (read a CSV with pandas, draw a bar chart with matplotlib, save a PNG) through
    Sandbox.run with the base set warm, against the same work in a cold `python -I` (its
    matplotlib font cache already built, so the baseline is as fast as it gets);
  * for the old set (numpy, pandas), each package added to it, and the whole base set: the
    sandbox's start (all zygotes ready) and the zygote's and its spare's memory (RSS, and PSS:
    pages shared between the zygote and its spare counted once, split between them).
Target: chart warm <= 0.05x cold. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.bench_sandbox import check, ms, percentile, timed
from bot.worker.sandbox import Sandbox
from bot.worker.sandbox.sandbox import BASE_PACKAGES

CHART = """
import matplotlib.pyplot as plt
import pandas as pd

def run(input_path):
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
    return {'months': len(totals)}
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
        with Sandbox(slots=1, packages=BASE_PACKAGES) as box:
            first = box.run(code=CHART, input_path=csv)
            assert first.status == "succeeded", (first.error_message, first.stderr)
            assert any(f.name == "sales.png" for f in first.output_files)
            for _ in range(runs):  # back to back: the next spare is often still warming up
                warm.append(timed(lambda: box.run(code=CHART, input_path=csv)))
            for _ in range(runs):  # as uploads arrive, a moment apart: a warm spare waits
                time.sleep(gap)
                paced.append(timed(lambda: box.run(code=CHART, input_path=csv)))
        out = Path(tmp) / "out"
        out.mkdir()
        cold_code = CHART.replace("output/", f"{out}/") + f"\nprint(run({str(csv)!r}))\n"
        env = {"MPLCONFIGDIR": str(Path(tmp) / "mpl"), "MPLBACKEND": "Agg", "PATH": "/usr/bin"}
        cold_cmd = [sys.executable, "-I", "-c", cold_code]
        subprocess.run(cold_cmd, check=True, stdout=subprocess.DEVNULL, env=env)  # font cache
        cold = [
            timed(lambda: subprocess.run(cold_cmd, check=True, stdout=subprocess.DEVNULL, env=env))
            for _ in range(cold_runs)
        ]
        floor = _in_process(Path(tmp), csv, runs)
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


def _in_process(tmp: Path, csv: Path, runs: int) -> list[float]:
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
        draw = scope["run"]
        assert callable(draw)
        draw(str(csv))
        return [timed(lambda: draw(str(csv))) for _ in range(runs)]
    finally:
        os.chdir(here)


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
    bench_memory(args.rounds)


if __name__ == "__main__":
    main()
