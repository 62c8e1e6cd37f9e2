"""Runs are taken from users in turn, on the local pool and on Celery: a second user's run
starts before the first user's backlog drains; over a queued-runs limit the answer says so."""

from __future__ import annotations

import pytest

from bot.services.fairness import Busy, RunLimits
from tests.integration.test_runs import (  # noqa: F401  (fixtures)
    CSV_ROWS,
    Harness,
    celery,
    harness,
    local,
)

SLOW = "import time\n\ndef run(input_path):\n    time.sleep(0.3)\n    return 1\n"


def test_a_second_users_run_starts_before_the_first_users_backlog_drains(
    harness: Harness,  # noqa: F811
) -> None:
    task_id = harness.task(SLOW)
    runs = harness.services.runs
    flood = [
        runs.request(task_id, requested_by="UA", input_data=b"x", submit=False).id for _ in range(8)
    ]
    single = runs.request(task_id, requested_by="UB", input_data=b"x", submit=False).id
    for run_id in [*flood, single]:  # the queue hears of them in the order they were asked
        runs.submit(run_id)
    done = {run_id: harness.wait(run_id) for run_id in [*flood, single]}
    assert all(view.status == "succeeded" for view in done.values())
    order = sorted(done, key=lambda run_id: done[run_id].started_at)  # type: ignore[arg-type,return-value]
    # First come first served starts it 9th (last); in turn it starts as soon as a place is
    # free: after what the free places took while the flood was being handed over (the local
    # pool has two threads per slot, two slots; Celery two threads).
    assert order.index(single) <= 4, [done[r].requested_by for r in order]
    assert done[single].started_at < done[flood[-1]].started_at  # type: ignore[operator]


def test_over_the_queued_runs_limit_is_busy_and_nothing_is_queued(
    local: Harness,  # noqa: F811
) -> None:
    task_id = local.task(CSV_ROWS)
    runs = local.services.runs
    limited = runs.limits
    object.__setattr__(runs, "limits", RunLimits(per_user=2, per_channel=0))
    try:
        kept = [
            runs.request(task_id, requested_by="UA", input_data=b"a\n1\n", submit=False).id
            for _ in range(2)
        ]
        with pytest.raises(Busy, match=r"you already have 2 runs waiting \(at most 2\), 2 ahead"):
            runs.request(task_id, requested_by="UA", input_data=b"a\n1\n", submit=False)
        other = runs.request(task_id, requested_by="UB", input_data=b"a\n1\n", submit=False).id
        assert sorted(runs.queued_ids()) == sorted([*kept, other])
        for run_id in [*kept, other]:
            runs.submit(run_id)
        assert all(local.wait(r).status == "succeeded" for r in [*kept, other])
    finally:
        object.__setattr__(runs, "limits", limited)
