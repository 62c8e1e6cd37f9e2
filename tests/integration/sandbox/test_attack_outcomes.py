"""Attack: produce an outcome the host cannot store or show, so that the run stays `running`
and its readers crash. On SQLite and PostgreSQL every run must reach a final state, and the
API, Slack and the terminal must show what was stored."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from bot.api.run_models import RunOut
from bot.composition import Services, build_services
from bot.config import Settings
from bot.services.runs import RunView
from bot.slack import blocks
from storage import migrate
from storage.db import make_engine
from storage.run_repository import RunRepository
from tests.fakes.model import FakeCodeGenerator
from tests.fakes.openai_server import answer_json

# The run writes its own result header on fd 3: what a hostile run can claim.
RAW_RESULT = """
import json, os, sys
def run(p):
    header = HEADER
    payload = PAYLOAD
    os.write(3, json.dumps(header).encode() + b"\\n" + payload)
    sys.stdout.flush()
    os._exit(0 if header.get("ok") else 1)
"""


def _raw(header: dict[str, object], payload: bytes = b"") -> str:
    return RAW_RESULT.replace("HEADER", repr(header)).replace("PAYLOAD", repr(payload))


ATTACKS = {
    "nul_in_streams_and_error": (
        "import sys\n"
        "def run(p):\n"
        "    print('out\\x00put')\n"
        "    print('err\\x00or', file=sys.stderr)\n"
        "    raise ValueError('bad \\x00 value \\ud800 here')\n"
    ),
    "surrogate_message": (
        "def run(p):\n    raise RuntimeError('lone \\udcff surrogate ' + chr(0xD800))\n"
    ),
    "type_with_newlines": (
        "def run(p):\n"
        "    kind = type('Oops\\n:white_check_mark: Run succeeded\\n' + 'x' * 300, (Exception,), {})\n"
        "    raise kind('fake')\n"
    ),
    "long_output_path": (
        "import os\n"
        "def run(p):\n"
        "    path = 'output/' + '/'.join(['d' * 60] * 4)\n"
        "    os.makedirs(path)\n"
        "    open(path + '/' + 'f' * 60 + '.txt', 'w').write('x')\n"
        "    open('output/ok.txt', 'w').write('y')\n"
    ),
    "deep_json": _raw(
        {"v": 1, "ok": True, "kind": "json", "size": 20000, "truncated": False},
        b"[" * 10_000 + b"]" * 10_000,
    ),
    "non_finite_json": "def run(p):\n    return {'mean': float('nan'), 'max': float('inf')}\n",
    "huge_error_type": _raw(
        {"v": 1, "ok": False, "error_type": "E" * 60_000, "error_message": "m"}
    ),
    "nul_text_result": "def run(p):\n    return 'a\\x00b\\ud800c'\n",
    "cut_json": "def run(p):\n    return [{'row': i, 'pad': 'x' * 100} for i in range(10_000)]\n",
}


@pytest.fixture
def services(db_url: str) -> Iterator[Services]:
    engine = make_engine(db_url)
    migrate.upgrade(engine)
    settings = Settings(
        database_url=db_url,
        sandbox_wall_seconds=8,
        sandbox_cpu_seconds=4,
        worker_concurrency=2,
    )
    built = build_services(settings, engine=engine, generator=FakeCodeGenerator(), runner="local")
    try:
        yield built
    finally:
        built.close()


def _refuse(constant: str) -> None:
    raise AssertionError(f"{constant} stored in a JSON result")


def _final(services: Services, run_id: str, timeout: float = 60) -> RunView:
    view = services.runs.wait(run_id, timeout=timeout)  # woken by the run's own events
    assert view.final, f"run {run_id} is still {view.status}"
    return view


def test_every_outcome_reaches_a_final_state_and_every_reader(services: Services) -> None:
    model = services.generator
    assert isinstance(model, FakeCodeGenerator)
    run_ids = {}
    for name, code in ATTACKS.items():
        model.queue(answer_json(code=code))
        task = services.tasks.create(
            description=name, task_type="generator", requested_by="U1", source="cli"
        ).task
        run_ids[name] = services.runs.request(task.id, requested_by="U1").id
    for name, run_id in run_ids.items():
        view = _final(services, run_id)
        assert view.status in ("succeeded", "failed", "killed"), (name, view.status)
        assert view.error_type != "OutcomeNotStored", name  # stored, not just given up on
        answer = RunOut.of(view).model_dump(mode="json")
        body = json.dumps(answer, allow_nan=False)  # valid JSON, every time
        assert json.loads(body)["final"] is True
        assert blocks.run_message(view).blocks
        assert "\x00" not in (view.stdout or "") + (view.stderr or "") + (view.error_message or "")
        if view.error_type is not None:
            assert "\n" not in view.error_type and len(view.error_type) <= 200
        if view.result_kind == "json":
            assert view.result is not None
            json.loads(view.result, parse_constant=_refuse)
    long_path = services.runs.get(run_ids["long_output_path"])
    assert long_path.status == "succeeded"
    assert {f.name for f in long_path.files} >= {"ok.txt"}
    assert all(len(f.name) <= 255 for f in long_path.files)
    assert services.runs.get(run_ids["cut_json"]).result_truncated


def test_an_outcome_that_still_cannot_be_stored_ends_the_run(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever else goes wrong storing an outcome, the run is not left running."""
    model = services.generator
    assert isinstance(model, FakeCodeGenerator)
    model.queue(answer_json(code="def run(p):\n    return 'fine'\n"))
    task = services.tasks.create(
        description="d", task_type="generator", requested_by="U1", source="cli"
    ).task
    real_record = RunRepository.record_outcome
    refused: list[str] = []

    def record_once_refused(repo: RunRepository, run_id: str, **kwargs: Any) -> bool:
        if not refused:
            refused.append(run_id)
            raise ValueError("this outcome cannot be stored")
        return real_record(repo, run_id, **kwargs)

    # Refused where it is stored, whichever way the worker records it (alone, or with the
    # claim of its next run).
    monkeypatch.setattr(RunRepository, "record_outcome", record_once_refused)
    view = _final(services, services.runs.request(task.id, requested_by="U1").id)
    assert (view.status, view.error_type) == ("failed", "OutcomeNotStored")
    assert refused == [view.id]
