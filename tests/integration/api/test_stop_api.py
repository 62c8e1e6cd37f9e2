"""POST /api/run/{id}/stop: a running run is killed (reason stopped); an ended one is a 404."""

from __future__ import annotations

import time

from storage.kinds import RunStatus
from tests.integration.api.conftest import Api, MakeApi

NAP = "import time\n\ndef run(input_path):\n    time.sleep(20)\n    return 'slept'\n"


def _running(api: Api, run_id: str) -> None:
    """Until a worker claimed the run: woken by the claim's event, with a deadline."""
    deadline = time.monotonic() + 20
    while True:
        seen = api.services.signal.count
        if api.services.runs.get(run_id).status is RunStatus.RUNNING:
            return
        assert time.monotonic() < deadline, "the run was never claimed"
        api.services.signal.wait_after(seen, 1.0)


def test_stop_kills_a_running_run_and_a_second_stop_is_refused(
    make_api: MakeApi, sqlite_url: str
) -> None:
    api = make_api(sqlite_url, runner="local", sandbox_wall_seconds=40, sandbox_cpu_seconds=30)
    task = api.create(NAP)
    reply = api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "x"})
    run_id = reply.json["run_id"]
    _running(api, run_id)
    stopped = api.call("POST", f"/api/run/{run_id}/stop")
    assert stopped.status == 202, stopped.raw
    assert stopped.json["run_id"] == run_id
    run = api.wait_run(run_id, timeout=5)
    assert run["status"] == "killed", run
    assert run["failure"]["killed_reason"] == "stopped"
    again = api.call("POST", f"/api/run/{run_id}/stop")
    assert again.status == 404 and b"already ended" in again.raw


def test_stop_of_an_unknown_run_is_a_404(api: Api) -> None:
    reply = api.call("POST", "/api/run/00000000-0000-0000-0000-000000000000/stop")
    assert reply.status == 404 and reply.error_code() == "not_found"
