"""Pinning through the HTTP API: PUT and DELETE /api/task/{id}/pin."""

from __future__ import annotations

from tests.integration.api.conftest import Api

V2 = "def run(input_path):\n    return {'v': 2}\n"


def test_pin_and_unpin_a_version(api: Api) -> None:
    task = api.create()
    assert api.refine(task["id"], V2).status == 201
    pinned = api.call("PUT", f"/api/task/{task['id'][:8]}/pin", json={"version": 1})
    assert pinned.status == 200, pinned.raw
    assert pinned.json == {
        "task_id": task["id"],
        "pinned_version": 1,
        "current_version": 2,
        "runs_version": 1,
    }
    assert api.services.tasks.get(task["id"]).trigger_version == 1
    missing = api.call("PUT", f"/api/task/{task['id']}/pin", json={"version": 7})
    assert missing.status == 404 and "no version 7" in missing.json["error"]["message"]
    unpinned = api.call("DELETE", f"/api/task/{task['id']}/pin")
    assert unpinned.status == 200 and unpinned.json["runs_version"] == 2
    assert unpinned.json["pinned_version"] is None


def test_pin_needs_the_token_and_a_version(api: Api) -> None:
    task = api.create()
    assert (
        api.call("PUT", f"/api/task/{task['id']}/pin", json={"version": 1}, token=None).status
        == 401
    )
    bad = api.call("PUT", f"/api/task/{task['id']}/pin", json={"version": "one"})
    assert bad.status == 422
    assert api.services.tasks.get(task["id"]).pinned_version is None
