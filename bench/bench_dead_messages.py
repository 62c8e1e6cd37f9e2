"""What run messages Slack will not update (deleted by someone) cost: the Web API calls one such
message draws, and how long a new run's message takes to show its result while a hundred such
runs are pending, each against a healthy baseline measured in the same run.

    .venv/bin/python bench/bench_dead_messages.py [--dead 100] [--window 10] [--timeout 30]

The whole app runs in-process behind real HTTP (signed requests in, the loopback Slack fake
out, the real database, pool and sandbox), as in tests/e2e/slack."""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.services.runs import ReplyTarget
from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import CSV_ROWS, PEOPLE, create


def wait(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def upload(stack: Stack, root_ts: str, name: str) -> None:
    event = {
        "type": "message",
        "subtype": "file_share",
        "channel": "C1",
        "user": "U1",
        "text": "",
        "ts": f"{time.time():.6f}",
        "thread_ts": root_ts,
        "files": [stack.mock.host_file(name, PEOPLE)],
    }
    assert stack.slack.event(event)[0] == 200


def shown(stack: Stack, name: str) -> bool:
    return any(
        c.ok and f"on {name}: succeeded" in str(c.params.get("text"))
        for c in stack.mock.of("chat.update")
    )


def delay(stack: Stack, root_ts: str, name: str, timeout: float) -> float | None:
    """Seconds from the upload to Slack accepting the update that shows the result."""
    start = time.monotonic()
    upload(stack, root_ts, name)
    if not wait(lambda: shown(stack, name), timeout):
        return None
    return time.monotonic() - start


def calls_for(stack: Stack, name: str) -> int:
    posted = [c for c in stack.mock.of("chat.postMessage") if name in str(c.params.get("text"))]
    ts = posted[0].answer_ts
    return len([c for c in stack.mock.of("chat.update") if c.params.get("ts") == ts])


def all_final(stack: Stack, ids: list[str]) -> bool:
    with stack.services.uow() as uow:
        return all((run := uow.runs.get(i)) is not None and run.status == "succeeded" for i in ids)


def latest_final(stack: Stack, task_id: str, name: str) -> bool:
    with stack.services.uow() as uow:
        run = uow.runs.latest_for_task(task_id)
        return run is not None and run.input_name == name and run.status == "succeeded"


def fmt(seconds: float | None, timeout: float) -> str:
    return f"{seconds:.3f} s" if seconds is not None else f"never (> {timeout:.0f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dead", type=int, default=100)
    parser.add_argument("--window", type=float, default=10.0, help="seconds to count calls")
    parser.add_argument("--timeout", type=float, default=30.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        stack = make_stack(Path(tmp))
        try:
            task_id, root_ts = create(stack, CSV_ROWS)
            healthy = [delay(stack, root_ts, f"base{i}.csv", args.timeout) for i in range(3)]
            base_delay = statistics.median(d for d in healthy if d is not None)
            base_calls = calls_for(stack, "base0.csv")

            stack.mock.delete_posts("deleted.csv")
            upload(stack, root_ts, "deleted.csv")
            wait(lambda: latest_final(stack, task_id, "deleted.csv"), args.timeout)
            started = time.monotonic()
            time.sleep(args.window)  # the measuring window: count what the watcher does in it
            dead_calls = calls_for(stack, "deleted.csv")
            window = time.monotonic() - started

            runs, ids = stack.services.runs, []
            target = ReplyTarget("T1", None, "C1", root_ts)
            for i in range(args.dead):
                run = runs.request(
                    task_id, requested_by="U1", input_data=PEOPLE, input_name=f"old{i}.csv",
                    team_id="T1", submit=False, reply=target,
                )  # fmt: skip
                runs.attach_reply(run.id, message_ts=f"1600000000.{i:06d}", shown_status="queued")
                runs.submit(run.id)
                ids.append(run.id)
            wait(lambda: all_final(stack, ids), args.timeout * 4)
            loaded = [delay(stack, root_ts, f"new{i}.csv", args.timeout) for i in range(3)]
            got = [d for d in loaded if d is not None]
            loaded_delay = statistics.median(got) if len(got) == len(loaded) else None
        finally:
            close_stack(stack)
    print(f"Web API calls for one deleted run message over {window:.1f} s: {dead_calls}")
    print(f"  baseline, a healthy run's message: {base_calls} calls")
    print(f"  ratio: {dead_calls / base_calls:.2f}x")
    print(f"Delay of a new run's result (median of 3), with {args.dead} dead-message runs pending:")
    print(f"  baseline, none pending: {fmt(base_delay, args.timeout)}")
    print(f"  with {args.dead} pending: {fmt(loaded_delay, args.timeout)}")
    ratio = f"{loaded_delay / base_delay:.2f}x" if loaded_delay is not None else "unbounded"
    print(f"  ratio: {ratio}")


if __name__ == "__main__":
    main()
