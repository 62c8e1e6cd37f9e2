"""The failure drill: Taskbot scaled out on loopback, loaded, and hurt part by part.

Starts a private PostgreSQL and a private Redis (Valkey), two ``python -m bot serve`` (Celery
queue), two ``python -m bot worker``, a mock Slack Web API and a fake model (bench/_drill_stack.py)
and then, in order:

1. creates   N signed ``/task create`` at once over both web processes: every ack under 3 s,
             exactly N tasks, all ready.
2. kill -9   R ``/task run``; one worker is SIGKILLed when about half are final, then started
             again: every run final, none executed twice, none lost, one final message each.
3. redis     runs requested before, during and after a Redis restart (``shutdown nosave``, so
             the broker forgets everything): all of them run, once.
4. postgres  PostgreSQL stopped: commands still acked, each user told "The database is
             unreachable right now" (response_url); started again: the same processes serve.
5. slack 429 chat.postMessage and chat.update answer 429 (Retry-After) for 10 s while tasks
             are created and run: every message delivered afterwards, in order, once.

Prints a table and exits non-zero when a step fails its check. PostgreSQL and Redis are private
servers the drill starts in temporary directories (tests/servers.py) and removes at the end; it
never touches the machine's. Every process it started is stopped, whatever happens (a watchdog
alarm bounds the whole drill).

Run: .venv/bin/python bench/drill.py [--reduced]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._drill_stack import (
    Command,
    Stack,
    healthy,
    send_all,
    spread,
    wait_for,
)

FINAL = ("succeeded", "failed", "timed_out", "killed")
UNREACHABLE = "The database is unreachable right now"
_FINAL_TEXT = re.compile(r": (succeeded in|failed:|timed out|killed:)")
_RUNNING_TEXT = re.compile(r": running")


@dataclass(frozen=True)
class Sizes:
    creates: int
    runs: int
    redis_runs: int
    pg_requests: int
    slack_requests: int
    connections: int
    deadline: float  # the whole drill, seconds


FULL = Sizes(1000, 500, 100, 20, 30, 1000, 900)  # step 1: one connection per create
REDUCED = Sizes(100, 50, 30, 10, 10, 50, 280)


@dataclass
class Row:
    step: str
    requests: int = 0
    acked: int = 0
    p99: float = 0.0
    final: str = ""
    duplicates: int = 0
    lost: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return (
            not self.problems
            and self.duplicates == 0
            and self.lost == 0
            and self.acked == self.requests
        )

    def acks(self, commands: list[Command]) -> None:
        self.requests += len(commands)
        self.acked += sum(1 for c in commands if c.acked)
        latencies = sorted(c.latency for c in commands if c.latency >= 0)
        if latencies:
            self.p99 = max(self.p99, latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))])
        errors = Counter(c.error or f"HTTP {c.status}" for c in commands if c.status != 200)
        for error, count in errors.items():
            self.problems.append(f"{count} requests not acked: {error}")


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def wait_until(predicate: Callable[[], bool], timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except Exception as exc:  # the database may be restarting
            log(f"  (waiting: {type(exc).__name__}: {exc})")
        time.sleep(every)
    return False


# --- checks on the database and the mock ----------------------------------------------------


def task_counts(stack: Stack, creator: str) -> tuple[int, int, int]:
    """(tasks, ready, versions beyond the first) created by ``creator``."""
    ((total, ready),) = stack.sql(
        "SELECT count(*), count(*) FILTER (WHERE state = 'ready') FROM tasks WHERE creator = %s",
        creator,
    )
    ((extra,),) = stack.sql(
        "SELECT count(*) FROM task_versions v JOIN tasks t ON t.id = v.task_id "
        "WHERE t.creator = %s AND v.number > 1",
        creator,
    )
    return int(total), int(ready), int(extra)


def runs_settled(stack: Stack, user: str, expected: int) -> bool:
    """Every run final and its Slack message showing that (watchers caught up)."""
    ((total, final, shown),) = stack.sql(
        "SELECT count(*), count(*) FILTER (WHERE status = ANY(%s)), "
        "count(*) FILTER (WHERE status = ANY(%s) AND notified_status = status) "
        "FROM runs WHERE requested_by = %s",
        list(FINAL),
        list(FINAL),
        user,
    )
    return int(total) >= expected and final == total and shown == total


def rank(text: str) -> int:
    if _FINAL_TEXT.search(text):
        return 2
    return 1 if _RUNNING_TEXT.search(text) else 0


def check_runs(stack: Stack, row: Row, user: str, expected: int, since: int) -> None:
    """Final states, duplicates (a second execution, a second row of output, a second final
    message) and losses (no row, not final, no message, no final message) of ``user``'s runs."""
    runs = stack.sql(
        "SELECT id, status, attempts, reply_ts, reply_thread_ts, error_type FROM runs "
        "WHERE requested_by = %s",
        user,
    )
    states = Counter(r[1] if r[1] != "failed" else f"failed/{r[5]}" for r in runs)
    final = sum(1 for r in runs if r[1] in FINAL)
    row.final = f"{final}/{expected} " + ", ".join(f"{k} {v}" for k, v in sorted(states.items()))
    twice = sum(1 for r in runs if r[2] > 1)
    ((dup_files,),) = stack.sql(
        "SELECT count(*) FROM (SELECT f.run_id, f.name FROM run_files f JOIN runs r "
        "ON r.id = f.run_id WHERE r.requested_by = %s GROUP BY f.run_id, f.name "
        "HAVING count(*) > 1) d",
        user,
    )
    updates: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in stack.calls("chat.update", since=since):
        if call["status"] == 200 and call["ok"]:
            updates[str(call["params"].get("ts"))].append(call)
    posts: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for call in stack.calls("chat.postMessage", since=since):
        if call["status"] == 200 and call["ok"] and call.get("answer_ts"):
            posts[str(call["answer_ts"])].append(call)
    two_finals = no_message = no_final = out_of_order = 0
    for run_id, status, _attempts, reply_ts, thread_ts, _error in runs:
        if not reply_ts or not posts.get(reply_ts):
            no_message += 1
            continue
        if any(p["params"].get("thread_ts") != thread_ts for p in posts[reply_ts]):
            row.problems.append(f"run {run_id[:8]}'s message is outside its task's thread")
        ranks = [rank(str(u["params"].get("text", ""))) for u in updates.get(reply_ts, [])]
        finals = ranks.count(2)
        if finals > 1:
            two_finals += 1
        elif finals == 0 and status in FINAL:
            no_final += 1
        if ranks != sorted(ranks):
            out_of_order += 1
    row.duplicates += max(0, len(runs) - expected) + twice + int(dup_files) + two_finals
    row.lost += max(0, expected - len(runs)) + (len(runs) - final) + no_message + no_final
    details = {
        "runs executed twice": twice,
        "duplicate run_files": int(dup_files),
        "messages with two final updates": two_finals,
        "runs without a message": no_message,
        "final runs whose message never showed it": no_final,
        "messages updated out of order": out_of_order,
    }
    for what, count in details.items():
        if count:
            row.problems.append(f"{count} {what}")


# --- the steps --------------------------------------------------------------------------------


def step_creates(stack: Stack, sizes: Sizes) -> tuple[Row, list[str]]:
    row = Row("1 creates")
    n = sizes.creates
    commands = spread(
        stack, [f"create echo the text of the input file (drill {i})" for i in range(n)]
    )
    t0 = time.monotonic()
    send_all(commands, stack.mock_base, connections=sizes.connections)
    log(f"  {n} creates sent in {time.monotonic() - t0:.1f} s; waiting for generation")
    row.acks(commands)
    settled = wait_until(lambda: task_counts(stack, "U1")[1] >= n, timeout=60 + 0.3 * n)
    total, ready, extra = task_counts(stack, "U1")
    row.final = f"{ready}/{n} ready"
    row.duplicates = max(0, total - n) + extra
    row.lost = max(0, n - total) + (total - ready)
    if not settled:
        row.problems.append(f"generation did not finish: {ready} of {n} ready")
    row.seconds = time.monotonic() - t0
    ids = [r[0] for r in stack.sql("SELECT id FROM tasks WHERE state = 'ready' ORDER BY id")]
    return row, ids


def step_kill_worker(stack: Stack, sizes: Sizes, tasks: list[str]) -> Row:
    row = Row("2 kill -9 worker")
    n, user = sizes.runs, "U2"
    since = stack.last_seq()
    texts = [f"run {tasks[i % len(tasks)]} drill-2-{i}" for i in range(n)]
    commands = spread(stack, texts, user=user)
    t0 = time.monotonic()
    sender = threading.Thread(
        target=send_all, args=(commands, stack.mock_base), kwargs={"connections": 20}
    )
    sender.start()

    def half_final() -> bool:
        ((final,),) = stack.sql(
            "SELECT count(*) FROM runs WHERE requested_by = %s AND status = ANY(%s)",
            user,
            list(FINAL),
        )
        return int(final) >= n // 2

    if wait_until(half_final, timeout=120, every=0.1):
        victim = stack.workers[0]
        ((running,),) = stack.sql("SELECT count(*) FROM runs WHERE status = 'running'")
        stack.kill9(victim)
        log(f"  kill -9 worker0 (pid {victim.popen.pid}) with {running} runs running")
        time.sleep(2)
        started = stack.restart_worker(0)
        log(f"  worker0 started again (pid {started.popen.pid})")
    else:
        row.problems.append("half the runs never finished; no worker was killed")
    sender.join()
    row.acks(commands)
    if not wait_until(lambda: runs_settled(stack, user, n), timeout=120 + 0.5 * n):
        row.problems.append("runs or their messages did not settle in time")
    check_runs(stack, row, user, n, since)
    row.seconds = time.monotonic() - t0
    return row


def step_redis(stack: Stack, sizes: Sizes, tasks: list[str]) -> Row:
    row = Row("3 redis restart")
    n, user = sizes.redis_runs, "U3"
    since = stack.last_seq()
    texts = [f"run {tasks[(i * 7) % len(tasks)]} drill-3-{i}" for i in range(n)]
    thirds = [texts[: n // 3], texts[n // 3 : 2 * n // 3], texts[2 * n // 3 :]]
    t0 = time.monotonic()
    before = spread(stack, thirds[0], user=user)
    send_all(before, stack.mock_base, connections=4)
    stack.redis.stop()
    down = time.monotonic()
    log(f"  Redis shut down (nosave) with {len(before)} runs just requested")
    during = spread(stack, thirds[1], user=user)
    send_all(during, stack.mock_base, connections=4)
    time.sleep(max(0.0, 3.0 - (time.monotonic() - down)))
    stack.redis.start()
    log(
        f"  Redis started again after {time.monotonic() - down:.1f} s; {len(during)} runs requested meanwhile"
    )
    after = spread(stack, thirds[2], user=user)
    send_all(after, stack.mock_base, connections=4)
    row.acks(before + during + after)
    if not wait_until(lambda: runs_settled(stack, user, n), timeout=150):
        row.problems.append("runs or their messages did not settle in time")
    check_runs(stack, row, user, n, since)
    row.seconds = time.monotonic() - t0
    return row


def step_postgres(stack: Stack, sizes: Sizes, tasks: list[str]) -> Row:
    row = Row("4 postgres restart")
    k = sizes.pg_requests
    pids = [p.popen.pid for p in stack.web + stack.workers]
    since = stack.last_seq()
    t0 = time.monotonic()
    stack.pg.stop()
    wait_for(lambda: not stack.pg.is_up(), 30, "PostgreSQL down")
    log("  PostgreSQL stopped")
    texts = [
        f"create drill during the outage {i}" if i % 2 else f"run {tasks[i]} drill-4-down-{i}"
        for i in range(k)
    ]
    during = spread(stack, texts, user="U4D")
    for i, command in enumerate(during):
        command.response = f"pgdown-{i}"
    send_all(during, stack.mock_base, connections=4)

    def told() -> set[str]:
        return {
            c["path"].rsplit("/", 1)[-1]
            for c in stack.calls("response_url", since=since)
            if UNREACHABLE in str(c["params"].get("text", ""))
        }

    wait_until(lambda: len(told()) >= k, timeout=45)
    not_told = k - len(told() & {c.response for c in during})
    stack.pg.start()
    wait_for(stack.pg.is_up, 60, "PostgreSQL up")
    log(f"  PostgreSQL started again after {time.monotonic() - t0:.1f} s")
    if not all(healthy(url) for url in stack.web_urls):
        wait_until(lambda: all(healthy(url) for url in stack.web_urls), timeout=60)
    alive = [p.popen.pid for p in stack.web + stack.workers if p.popen.poll() is None]
    if alive != pids:
        row.problems.append("a web or worker process exited or was replaced")
    after_texts = [
        f"create drill after the outage {i}" if i % 2 else f"run {tasks[i]} drill-4-up-{i}"
        for i in range(k)
    ]
    after = spread(stack, after_texts, user="U4")
    send_all(after, stack.mock_base, connections=4)
    row.acks(during + after)
    creates, runs = k // 2, k - k // 2
    done = wait_until(
        lambda: task_counts(stack, "U4")[1] >= creates and runs_settled(stack, "U4", runs),
        timeout=90,
    )
    if not done:
        row.problems.append("requests after the restart did not complete")
    ((half_done,),) = stack.sql(
        "SELECT (SELECT count(*) FROM tasks WHERE creator = 'U4D') + "
        "(SELECT count(*) FROM runs WHERE requested_by = 'U4D')"
    )
    if half_done:
        row.problems.append(f"{half_done} tasks/runs recorded from requests during the outage")
    total, ready, extra = task_counts(stack, "U4")
    sub = Row("sub")
    check_runs(stack, sub, "U4", runs, since)
    row.final = f"{k - not_told}/{k} told unreachable; after: {ready}/{creates} ready, {sub.final}"
    row.duplicates = sub.duplicates + max(0, total - creates) + extra
    row.lost = not_told + sub.lost + max(0, creates - ready)
    row.problems += sub.problems
    if not_told:
        row.problems.append(f"{not_told} users were not told the database is unreachable")
    row.seconds = time.monotonic() - t0
    return row


def step_slack(stack: Stack, sizes: Sizes, tasks: list[str]) -> Row:
    row = Row("5 slack 429 10 s")
    k, user = sizes.slack_requests, "U5"
    since = stack.last_seq()
    t0 = time.monotonic()
    stack.rate_limit(["chat.postMessage", "chat.update"], 10)
    log("  chat.postMessage and chat.update answer 429 for 10 s")
    threads = tasks[-max(1, k // 3) :]  # several runs share a thread
    texts = [f"create drill under rate limiting {i}" for i in range(k)]
    texts += [f"run {threads[i % len(threads)]} drill-5-{i}" for i in range(k)]
    commands = spread(stack, texts, user=user)
    send_all(commands, stack.mock_base, connections=8)
    row.acks(commands)
    settled = wait_until(
        lambda: task_counts(stack, user)[1] >= k and runs_settled(stack, user, k), timeout=150
    )
    if not settled:
        row.problems.append("messages were not all delivered in time")
    check_runs(stack, row, user, k, since)
    runs_final = row.final
    # Each new task's thread: root post, then metadata, then code, then the root says ready.
    posts = [c for c in stack.calls("chat.postMessage", since=since) if c["status"] == 200]
    updates = [c for c in stack.calls("chat.update", since=since) if c["status"] == 200]
    limited = sum(1 for c in stack.calls(since=since) if c["status"] == 429)
    new_tasks = stack.sql("SELECT id, thread_ts, state FROM tasks WHERE creator = %s", user)
    ready = sum(1 for t in new_tasks if t[2] == "ready")
    bad_threads = lost_messages = doubled = 0
    for _task_id, thread_ts, _state in new_tasks:
        roots = [c for c in posts if c.get("answer_ts") == thread_ts]
        inside = [c for c in posts if c["params"].get("thread_ts") == thread_ts]
        ready_updates = [
            c
            for c in updates
            if c["params"].get("ts") == thread_ts and "is ready" in str(c["params"].get("text"))
        ]
        kinds = ["code" if "code" in str(c["params"].get("text")) else "meta" for c in inside]
        if len(roots) != 1 or len(ready_updates) != 1 or len(inside) != 2:
            lost_messages += int(not roots) + int(not ready_updates) + max(0, 2 - len(inside))
            doubled += max(0, len(roots) - 1) + max(0, len(ready_updates) - 1)
            doubled += max(0, len(inside) - 2)
            continue
        order = [roots[0]["seq"], inside[0]["seq"], inside[1]["seq"], ready_updates[0]["seq"]]
        if kinds != ["meta", "code"] or order != sorted(order):
            bad_threads += 1
    row.requests = len(commands)
    row.final = f"{ready}/{k} ready; runs {runs_final}; {limited} answers were 429"
    row.duplicates += doubled + max(0, len(new_tasks) - k)
    row.lost += lost_messages + max(0, k - ready)
    if bad_threads:
        row.problems.append(f"{bad_threads} task threads out of order")
    if not limited:
        row.problems.append("the mock never answered 429")
    row.seconds = time.monotonic() - t0
    return row


# --- the table and main -----------------------------------------------------------------------


def table(rows: list[Row]) -> str:
    head = (
        "step",
        "requests",
        "acked <3 s",
        "p99 ack",
        "final states",
        "dup",
        "lost",
        "time",
        "ok",
    )
    lines = [
        (
            r.step,
            str(r.requests),
            str(r.acked),
            f"{r.p99 * 1000:.0f} ms",
            r.final,
            str(r.duplicates),
            str(r.lost),
            f"{r.seconds:.0f} s",
            "yes" if r.ok else "NO",
        )
        for r in rows
    ]
    widths = [max(len(x) for x in col) for col in zip(head, *lines, strict=False)]
    fmt = " | ".join(f"{{:{w}}}" for w in widths)
    out = [fmt.format(*head), "-+-".join("-" * w for w in widths)]
    out += [fmt.format(*line) for line in lines]
    return "\n".join(out)


class Watchdog(Exception):
    pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reduced", action="store_true", help="CI size (100 creates, 50 runs)")
    parser.add_argument(
        "--connections", type=int, default=0, help="client connections for step 1's burst"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the processes' logs")
    args = parser.parse_args()
    sizes = REDUCED if args.reduced else FULL
    if args.connections:
        sizes = dataclasses.replace(sizes, connections=args.connections)
    tmp = Path(tempfile.mkdtemp(prefix="taskbot-drill-"))

    def alarm(_signum: int, _frame: Any) -> None:
        raise Watchdog(f"the drill ran over {sizes.deadline:.0f} s")

    signal.signal(signal.SIGALRM, alarm)
    signal.alarm(int(sizes.deadline))
    stack = Stack(tmp)
    rows: list[Row] = []
    started = time.monotonic()
    failure = ""
    try:
        log(f"starting the stack (database {stack.db_name}, Redis db {stack.redis_db}, logs {tmp})")
        stack.start(lifetime=sizes.deadline + 60)
        log(f"stack up in {time.monotonic() - started:.1f} s: web {stack.web_urls}")
        steps: list[Callable[[list[str]], Row]] = [
            lambda t: step_kill_worker(stack, sizes, t),
            lambda t: step_redis(stack, sizes, t),
            lambda t: step_postgres(stack, sizes, t),
            lambda t: step_slack(stack, sizes, t),
        ]
        log(f"step 1: {sizes.creates} creates")
        first, tasks = step_creates(stack, sizes)
        rows.append(first)
        log(f"  done: {first.final} in {first.seconds:.0f} s")
        if len(tasks) < sizes.pg_requests:
            raise RuntimeError("too few ready tasks to go on")
        for number, step in enumerate(steps, start=2):
            log(f"step {number}")
            rows.append(step(tasks))
            log(f"  done: {rows[-1].final} in {rows[-1].seconds:.0f} s")
    except Exception as exc:
        failure = f"{type(exc).__name__}: {exc}"
        log(f"drill aborted: {failure}")
    finally:
        signal.alarm(0)
        try:
            stack.stop()
        finally:
            stack.drop()
    total = time.monotonic() - started
    print()
    print(
        f"Taskbot drill ({'reduced' if args.reduced else 'full'}): 2 web + 2 workers "
        f"(2 sandbox slots each), PostgreSQL, Redis, mock Slack; {total:.0f} s in all"
    )
    print(table(rows))
    problems = [(r.step, p) for r in rows for p in r.problems]
    for step, problem in problems:
        print(f"  {step}: {problem}")
    if failure:
        print(f"  aborted: {failure}")
    ok = not failure and len(rows) == 5 and all(r.ok for r in rows)
    if args.keep_logs or not ok:
        print(f"logs of every process: {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    print("drill passed" if ok else "DRILL FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
