"""One user floods the model, another asks once: how long the second waits, first come first
served (a plain ThreadPoolExecutor, what the flow process had) against users in turn
(``FairPool``), both measured in the same run with the same stand-in model call.

The issue's case: 48 creates by one user, a model taking 6 s each, 8 threads. Scaled down in
time (``--call`` seconds per model call), the same shape.

Run: .venv/bin/python bench/bench_fairness.py [--flood 48] [--call 0.05] [--threads 8]
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.services.fairness import FairPool


def measure(
    submit: Callable[[str, Callable[[], None]], None], *, flood: int, call: float
) -> tuple[float, int]:
    """(seconds the second user waited for the model, how many calls went before it)"""
    order: list[str] = []
    lock = threading.Lock()
    done = threading.Semaphore(0)
    asked: dict[str, float] = {}

    def model(user: str) -> Callable[[], None]:
        def run() -> None:
            with lock:
                order.append(user)
                if user == "UB":
                    asked["UB"] = time.monotonic()
            time.sleep(call)  # the model is busy for this long
            done.release()

        return run

    for _ in range(flood):
        submit("UA", model("UA"))
    time.sleep(call / 2)  # the second user asks while the first user's burst is with the model
    start = time.monotonic()
    submit("UB", model("UB"))
    for _ in range(flood + 1):
        done.acquire()
    return asked["UB"] - start, order.index("UB")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flood", type=int, default=48)
    parser.add_argument("--call", type=float, default=0.05)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()

    fifo = ThreadPoolExecutor(max_workers=args.threads)
    before = measure(lambda _user, job: fifo.submit(job) and None, flood=args.flood, call=args.call)
    fifo.shutdown()

    fair = FairPool(workers=args.threads, per_user=0, per_channel=0)

    def fair_submit(user: str, job: Callable[[], None]) -> None:
        fair.submit(fair.reserve(user=user, channel="C1"), job)

    after = measure(fair_submit, flood=args.flood, call=args.call)
    fair.shutdown()
    print(f"{args.flood} model calls by one user, {args.threads} threads, {args.call} s a call")
    print(f"first come first served: second user waited {before[0]:.3f} s, {before[1]} calls ahead")
    print(f"users in turn:           second user waited {after[0]:.3f} s, {after[1]} calls ahead")
    print(f"ratio (in turn / first come first served): {after[0] / before[0]:.3f}")


if __name__ == "__main__":
    main()
