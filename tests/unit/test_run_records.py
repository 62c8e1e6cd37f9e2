"""The run records on a fake unit of work: claims and outcomes are recorded once, each change
is announced on the RunSignal, and waiting on a run wakes on that signal (or the sweep)."""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import UTC, datetime
from types import TracebackType
from typing import Any

from bot.services.events import RunSignal
from bot.services.runs import RunOutcome, RunRecords
from storage.kinds import RunStatus
from storage.models import Run

CODE = "def run(input_path):\n    return 1\n"


class FakeRuns:
    def __init__(self) -> None:
        self.rows: dict[str, Run] = {}

    def get(self, run_id: str) -> Run | None:
        return self.rows.get(run_id)

    def files(self, run_id: str) -> list[Any]:
        return []

    def job(self, run_id: str) -> dict[str, Any] | None:
        if run_id not in self.rows:
            return None
        return {"task_type": "generator", "code": CODE, "input_name": None, "input_data": None}

    def claim(self, run_id: str, *, worker: str, started_at: datetime) -> bool:
        run = self.rows.get(run_id)
        if run is None or run.status != RunStatus.QUEUED.value:
            return False
        run.status, run.worker, run.started_at = RunStatus.RUNNING.value, worker, started_at
        run.attempts = (run.attempts or 0) + 1
        return True

    def record_outcome(
        self, run_id: str, *, values: dict[str, Any], files: Sequence[tuple[str, int, bytes]]
    ) -> bool:
        run = self.rows[run_id]
        if RunStatus(run.status).final:
            return False
        for key, value in values.items():
            setattr(run, key, value)
        return True

    def drop_input(self, run_id: str) -> bool:
        return False  # these runs are generators: no input to drop


class FakeUsage:
    def __init__(self) -> None:
        self.runs: list[str] = []

    def record_run(self, run_id: str, *, cpu_seconds: float, at: datetime) -> None:
        self.runs.append(run_id)


class FakeUnitOfWork:
    def __init__(self) -> None:
        self.runs, self.usage, self.commits = FakeRuns(), FakeUsage(), 0

    def __call__(self) -> FakeUnitOfWork:
        return self

    def __enter__(self) -> FakeUnitOfWork:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None

    def commit(self) -> None:
        self.commits += 1


def records() -> tuple[RunRecords, FakeUnitOfWork, list[str]]:
    uow, heard = FakeUnitOfWork(), []
    signal = RunSignal()
    signal.subscribe(heard.append)
    made = RunRecords(
        uow=uow,  # type: ignore[arg-type]
        packages=(),
        max_code_bytes=10_000,
        wall_seconds=5,
        signal=signal,
    )
    now = datetime.now(UTC)
    for run_id in ("r1", "r2"):
        uow.runs.rows[run_id] = Run(
            id=run_id, task_id="t", version_number=1, status="queued", requested_by="U1",
            queued_at=now, attempts=0,
        )  # fmt: skip
    return made, uow, heard


DONE = RunOutcome(status=RunStatus.SUCCEEDED, result_kind="json", result=b"1")


def test_a_run_is_claimed_and_recorded_once_and_each_change_is_announced() -> None:
    runs, uow, heard = records()
    assert runs.start("r1", worker="w1") is not None
    assert runs.start("r1", worker="w2") is None  # another worker has it
    assert runs.finish("r1", DONE) is True
    assert runs.finish("r1", DONE) is False  # a second outcome changes nothing
    assert heard == ["r1", "r1"]  # claimed, ended: nothing for the refused ones
    assert uow.usage.runs == ["r1"]
    view = runs.get("r1")
    assert view.status is RunStatus.SUCCEEDED and view.final


def test_an_outcome_and_the_next_claim_are_one_commit() -> None:
    runs, uow, heard = records()
    assert runs.start("r1", worker="w1") is not None
    before = uow.commits
    taken = runs.finish_then_start("r1", DONE, candidates=iter(["r1", "r2"]), worker="w1")
    assert uow.commits == before + 1  # one write for both
    assert taken is not None and taken[0] == "r2" and taken[1] is not None  # r1 had ended
    assert runs.get("r1").status is RunStatus.SUCCEEDED
    assert runs.get("r2").status is RunStatus.RUNNING
    assert heard == ["r1", "r1", "r2"]  # r1 claimed, r1 ended, r2 claimed
    # Nothing left to claim: the outcome is recorded all the same.
    assert runs.finish_then_start("r2", DONE, candidates=iter(["r1"]), worker="w1") is None
    assert runs.get("r2").status is RunStatus.SUCCEEDED


def test_a_claimed_run_whose_code_cannot_run_here_ends_failed_at_once() -> None:
    runs, uow, _ = records()
    runs = RunRecords(
        uow=uow,  # type: ignore[arg-type]
        packages=(),
        max_code_bytes=10,  # CODE is longer: every run's code is refused
        wall_seconds=5,
        signal=RunSignal(),
    )
    uow.runs.claim("r1", worker="w1", started_at=datetime.now(UTC))  # claimed before: it ran
    taken = runs.finish_then_start("r1", DONE, candidates=iter(["r2"]), worker="w1")
    assert taken == ("r2", None)  # claimed, and ended: nothing to execute
    ended = runs.get("r2")
    assert (ended.status, ended.error_type) == (RunStatus.FAILED, "CodeCheckFailed")
    assert runs.get("r1").status is RunStatus.SUCCEEDED


def test_waiting_on_a_run_wakes_when_it_ends_in_another_thread() -> None:
    runs, _, _ = records()
    runs.start("r1", worker="w1")
    seen: list[RunStatus] = []
    waiting = threading.Event()

    def wait() -> None:
        waiting.set()
        # The sweep is longer than the join below: only the signal can wake this in time.
        seen.append(runs.wait("r1", timeout=120, sweep=120).status)

    waiter = threading.Thread(target=wait, daemon=True)
    waiter.start()
    waiting.wait(5)
    runs.finish("r1", DONE)
    waiter.join(timeout=20)
    assert not waiter.is_alive(), "the waiter was not woken by the run's end"
    assert seen == [RunStatus.SUCCEEDED]


def test_a_change_nobody_announced_is_found_by_the_sweep() -> None:
    runs, uow, _ = records()
    uow.runs.rows["r2"].status = RunStatus.FAILED.value  # e.g. another process, no relay
    assert runs.wait("r2", timeout=5, sweep=0.01).status is RunStatus.FAILED
    assert runs.wait("r1", timeout=0.05, sweep=0.01).status is RunStatus.QUEUED  # gives up


def test_the_signal_relays_its_own_changes_only_and_survives_a_bad_listener() -> None:
    signal, local, relayed = RunSignal(), [], []

    def broken(run_id: str) -> None:
        raise RuntimeError("listener bug")

    signal.subscribe(broken)
    signal.subscribe(local.append)
    signal.relay(relayed.append)
    seen = signal.count
    signal.changed("mine")
    signal.heard("from-another-process")
    assert local == ["mine", "from-another-process"]
    assert relayed == ["mine"]  # what was heard from elsewhere is not sent back
    assert signal.wait_after(seen, timeout=0) == seen + 2
