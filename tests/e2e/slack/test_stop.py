"""Stopping runs from Slack: the Stop button and ``/task stop``, who may, and what is left."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.services.runs import RunView
from storage.kinds import RunStatus
from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import create, wait_run
from tests.fakes.slack_api import text_of

SLOW = (
    "import os, time\n\n"
    "def run(input_path):\n"
    "    if os.fork() == 0:\n"
    "        time.sleep(60)\n"
    "        os._exit(0)\n"
    "    time.sleep(20)\n"
    "    return 'slept'\n"
)


@pytest.fixture
def slow_stack(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path, sandbox_wall_seconds=40, sandbox_cpu_seconds=30)
    try:
        yield built
    finally:
        close_stack(built)


def _spare_of(pid: int, zygotes: set[int]) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return int(fields[1]) in zygotes and fields[1] == fields[2]


def _descendants() -> set[int]:
    """Every live process below this test's process (the sandbox's zygotes and their runs)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z":
            parents[int(entry)] = int(fields[1])
    found: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, ppid in parents.items() if ppid in frontier} - found
        found |= frontier
    return found


def _start_slow_run(stack: Stack, *, user: str = "U1") -> tuple[RunView, set[int]]:
    task_id, _ = create(stack, SLOW, text="create --type generator nap")
    before = _descendants()
    status, _ = stack.slack.button(task_id, user=user)
    assert status == 200
    wait_run(stack, "running")
    deadline = time.monotonic() + 20
    while len(_descendants() - before) < 2:  # the run's processes, with a deadline
        assert time.monotonic() < deadline, [text_of(c) for c in stack.mock.of("chat.update")]
        time.sleep(0.05)
    # A zygote's next warm spare (its child, in its process group) is no part of the run.
    started = {p for p in _descendants() - before if not _spare_of(p, before)}
    (run,) = [r for r in _runs(stack) if r.status is RunStatus.RUNNING]
    return run, started


def _runs(stack: Stack) -> list[RunView]:
    with stack.services.uow() as uow:
        ids = [r.id for r in uow.runs.with_status(RunStatus.RUNNING)]
        ids += [r.id for r in uow.runs.with_status(RunStatus.KILLED)]
    return [stack.services.runs.get(i) for i in ids]


def _wait_killed(stack: Stack, run_id: str, *, within: float) -> RunView:
    deadline = time.monotonic() + within
    while True:
        view = stack.services.runs.wait(run_id, timeout=max(0.0, deadline - time.monotonic()))
        if view.final or time.monotonic() >= deadline:
            return view


def _stop_button(stack: Stack, run_id: str, *, user: str) -> int:
    status, _ = stack.slack.button(run_id, user=user, action_id="stop_run")
    return status


def test_the_stop_button_kills_a_running_run_and_everything_it_started(
    slow_stack: Stack,
) -> None:
    stack = slow_stack
    run, started = _start_slow_run(stack)
    running = [c for c in stack.mock.of("chat.update") if ": running" in text_of(c)][-1]
    assert "(since <!date^" in text_of(running)  # when it started, in the reader's time zone
    stop = [b for b in running.params["blocks"] if b.get("type") == "actions"]
    assert stop and stop[0]["elements"][0]["action_id"] == "stop_run"
    assert stop[0]["elements"][0]["value"] == run.id

    assert _stop_button(stack, run.id, user="U1") == 200
    ended = _wait_killed(stack, run.id, within=2.0)
    assert ended.status is RunStatus.KILLED, ended.status
    assert ended.killed_reason == "stopped" and ended.stopped_by == "U1"
    assert started & _descendants() == set()  # the run's whole process tree is gone
    shown = wait_run(stack, "killed")
    assert "stopped by <@U1>" in shown
    told = stack.mock.wait_until(
        lambda calls: [c for c in calls if c.method == "response_url" and "Stopping" in text_of(c)],
        what="the ephemeral answer",
    )
    assert run.id[:8] in text_of(told[-1])


def test_someone_else_cannot_stop_it_but_an_admin_and_task_stop_can(tmp_path: Path) -> None:
    stack = make_stack(
        tmp_path, sandbox_wall_seconds=40, sandbox_cpu_seconds=30, admin_users=("UADMIN",)
    )
    try:
        run, started = _start_slow_run(stack)
        assert _stop_button(stack, run.id, user="U7") == 200
        refused = stack.mock.wait_until(
            lambda calls: [c for c in calls if c.method == "response_url" and "Only" in text_of(c)],
            what="the refusal",
        )
        assert "can stop this run" in text_of(refused[-1])
        status, _ = stack.slack.command(f"stop {run.task_id[:8]}", user="U8")
        assert status == 200
        stack.mock.wait_until(
            lambda calls: (
                len([c for c in calls if c.method == "response_url" and "Only" in text_of(c)]) >= 2
            ),
            what="the second refusal",
        )
        assert stack.services.runs.get(run.id).status is RunStatus.RUNNING
        assert started & _descendants() == started

        status, _ = stack.slack.command(f"stop {run.task_id[:8]}", user="UADMIN")
        assert status == 200
        ended = _wait_killed(stack, run.id, within=2.0)
        assert ended.status is RunStatus.KILLED and ended.stopped_by == "UADMIN"
        assert started & _descendants() == set()  # the run's whole process tree is gone
    finally:
        close_stack(stack)
