"""What a run produced is bounded and made storable before it is stored."""

from __future__ import annotations

import json

from bot.services.outcomes import (
    MAX_RESULT_DEPTH,
    RESULT_LIMIT,
    stored_files,
    stored_values,
)
from bot.services.runs import OutputFileView, RunOutcome
from storage.kinds import RunStatus


def test_results_are_bounded_in_depth_and_size() -> None:
    deep = b"[" * (MAX_RESULT_DEPTH + 1) + b"]" * (MAX_RESULT_DEPTH + 1)
    values = stored_values(RunOutcome(status=RunStatus.SUCCEEDED, result_kind="json", result=deep))
    assert (values["result_kind"], values["result"]) == ("text", deep)
    ok = b"[" * MAX_RESULT_DEPTH + b"]" * MAX_RESULT_DEPTH
    values = stored_values(RunOutcome(status=RunStatus.SUCCEEDED, result_kind="json", result=ok))
    assert values["result_kind"] == "json" and json.loads(values["result"])
    huge = json.dumps(["x" * 1000] * 2000).encode()  # valid, but 2 MB
    values = stored_values(RunOutcome(status=RunStatus.SUCCEEDED, result_kind="json", result=huge))
    assert len(values["result"]) == RESULT_LIMIT and values["result_truncated"]
    assert values["result_kind"] == "text"  # cut JSON is not JSON


def test_files_together_stay_within_the_limit() -> None:
    files = tuple(OutputFileView(f"f{i}", 400_000, b"x" * 400_000) for i in range(5))
    kept = stored_files(RunOutcome(status=RunStatus.SUCCEEDED, files=files))
    assert [name for name, _size, _content in kept] == ["f0", "f1"]
