"""Task endpoints over real HTTP, on SQLite and PostgreSQL: create, refine, show, versions, list."""

from __future__ import annotations

import uuid
from types import SimpleNamespace

import pytest

from bot.services import tasks as tasks_module
from bot.services.errors import GenerationFailed, ModelUnavailable
from tests.fakes.openai_server import COUNT_LINES, answer_json
from tests.integration.api.conftest import SEED_ACTION, Api, MakeApi

COUNT_WORDS = (
    "def run(input_path):\n"
    "    with open(input_path, encoding='utf-8') as f:\n"
    "        return {'words': len(f.read().split())}\n"
)


@pytest.fixture
def db_api(make_api: MakeApi, db_url: str) -> Api:
    return make_api(db_url)


def test_seed_request_creates_a_task(db_api: Api) -> None:
    db_api.model.queue(answer_json(code=COUNT_LINES, name="extract_topics"))
    reply = db_api.call(
        "POST",
        "/api/task/create",
        json={"desired_action": SEED_ACTION, "task_type": "passthrough"},
    )
    assert reply.status == 201, reply.raw
    assert reply.headers["content-type"] == "application/json"
    body = reply.json
    assert {"id", "version", "name", "task_type", "state", "metadata", "code", "created_at"} <= set(
        body
    )
    assert body["version"] == 1
    assert body["name"] == "extract_topics"
    assert body["task_type"] == "passthrough"
    assert body["state"] == "ready"
    assert body["code"] == COUNT_LINES
    assert body["desired_action"] == SEED_ACTION
    assert body["metadata"]["name"] == "extract_topics"
    assert body["metadata"]["task_type"] == "passthrough"
    stored = db_api.services.tasks.get(body["id"])
    assert stored.source == "api" and stored.creator == "api" and stored.team_id == ""
    assert body["checks"]["summary"] == "1 check passed"
    assert (body["checks"]["passed"], body["checks"]["total"]) == (1, 1)
    assert (
        body["checks"]["items"][0]["name"] == "check_defines_run"
        and body["checks"]["items"][0]["ok"]
    )
    versions = db_api.call("GET", f"/api/task/{body['id']}/versions").json["versions"]
    assert versions[0]["checks"]["passed"] == 1 and versions[0]["state"] == "ready"


def test_task_type_defaults_to_passthrough(db_api: Api) -> None:
    body = db_api.create(desired_action="count the lines")
    assert body["task_type"] == "passthrough"


def test_refine_show_versions_and_list(db_api: Api) -> None:
    task = db_api.create()
    task_id = task["id"]

    refined = db_api.refine(task_id[:8], COUNT_WORDS, feedback="count words instead")
    assert refined.status == 201, refined.raw
    body = refined.json
    assert body["id"] == task_id
    assert body["version"] == 2 and body["previous_version"] == 1
    assert body["change_summary"] == "changed"
    assert "-        return {'lines'" in body["diff"]
    assert "+        return {'words'" in body["diff"]
    assert body["code"] == COUNT_WORDS

    current = db_api.call("GET", f"/api/task/{task_id}")
    assert current.status == 200
    assert current.json["version"] == 2 and current.json["code"] == COUNT_WORDS

    first = db_api.call("GET", f"/api/task/{task_id[:6]}?version=1")
    assert first.status == 200
    assert first.json["version"] == 1 and first.json["code"] == COUNT_LINES
    assert first.json["current_version"] == 2

    missing = db_api.call("GET", f"/api/task/{task_id}?version=9")
    assert missing.status == 404 and missing.error_code() == "not_found"
    assert "no version 9" in missing.json["error"]["message"]

    versions = db_api.call("GET", f"/api/task/{task_id[:10]}/versions")
    assert versions.status == 200
    assert versions.json["task_id"] == task_id
    listed = versions.json["versions"]
    assert [v["version"] for v in listed] == [1, 2]
    assert listed[0]["request_kind"] == "create" and listed[0]["request_text"] == SEED_ACTION
    assert listed[1]["request_kind"] == "refine"
    assert listed[1]["request_text"] == "count words instead"
    assert listed[1]["requested_by"] == "api"

    other = db_api.create(desired_action="another task")
    tasks = db_api.call("GET", "/api/tasks")
    assert tasks.status == 200
    ids = [t["id"] for t in tasks.json["tasks"]]
    assert set(ids) == {task_id, other["id"]}
    one = db_api.call("GET", "/api/tasks?limit=1")
    assert len(one.json["tasks"]) == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=abc", "limit=-1", "limit="])
def test_list_limit_is_validated(api: Api, query: str) -> None:
    reply = api.call("GET", f"/api/tasks?{query}")
    assert reply.status == 422 and reply.error_code() == "invalid_input"
    assert "limit" in reply.json["error"]["message"]


@pytest.mark.parametrize("query", ["version=0", "version=x", "version=99999999999999999999"])
def test_version_query_is_validated(api: Api, query: str) -> None:
    task = api.create()
    reply = api.call("GET", f"/api/task/{task['id']}?{query}")
    assert reply.status == 422 and reply.error_code() == "invalid_input"
    assert "version" in reply.json["error"]["message"]


def test_unknown_short_and_ambiguous_ids(api: Api) -> None:
    unknown = api.call("GET", "/api/task/0123456789abcdef")
    assert unknown.status == 404 and unknown.error_code() == "not_found"
    not_hex = api.call("GET", "/api/task/zzzzzzzzz/versions")
    assert not_hex.status == 404 and not_hex.error_code() == "not_found"
    short = api.call("GET", "/api/task/abc")
    assert short.status == 422 and short.error_code() == "invalid_input"
    assert "at least 6" in short.json["error"]["message"]
    refine_unknown = api.call("POST", "/api/task/0123456789abcdef/refine", json={"feedback": "x"})
    assert refine_unknown.status == 404 and refine_unknown.error_code() == "not_found"


def test_ambiguous_prefix_answers_409(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    ids = iter(uuid.UUID(f"abcdef01-0000-4000-8000-00000000000{n}") for n in (1, 2))
    monkeypatch.setattr(tasks_module, "uuid", SimpleNamespace(uuid4=lambda: next(ids)))
    first = api.create(desired_action="one")
    api.create(desired_action="two")
    reply = api.call("GET", f"/api/task/{first['id'][:6]}")
    assert reply.status == 409 and reply.error_code() == "ambiguous_id"
    run = api.call("POST", f"/api/task/{first['id'][:6]}/run", json={"input_text": "x"})
    assert run.status == 409 and run.error_code() == "ambiguous_id"
    exact = api.call("GET", f"/api/task/{first['id']}")
    assert exact.status == 200


def test_model_errors_map_to_503_and_422(api: Api) -> None:
    api.model.queue(ModelUnavailable("the model server is down"))
    down = api.call("POST", "/api/task/create", json={"desired_action": "count lines"})
    assert down.status == 503 and down.error_code() == "model_unavailable"

    api.model.queue("not json", "still not json", "never json")
    failed = api.call("POST", "/api/task/create", json={"desired_action": "count lines"})
    assert failed.status == 422 and failed.error_code() == "generation_failed"

    task = api.create()
    api.model.queue(GenerationFailed("no good answer"))
    refine = api.call("POST", f"/api/task/{task['id']}/refine", json={"feedback": "more"})
    assert refine.status == 422 and refine.error_code() == "generation_failed"


def test_failed_task_is_not_ready(api: Api) -> None:
    api.model.queue(ModelUnavailable("down"))
    api.call("POST", "/api/task/create", json={"desired_action": "count lines"})
    task = api.call("GET", "/api/tasks").json["tasks"][0]
    assert task["state"] == "failed"
    shown = api.call("GET", f"/api/task/{task['id']}")
    assert shown.status == 409 and shown.error_code() == "not_ready"
    refine = api.call("POST", f"/api/task/{task['id']}/refine", json={"feedback": "more"})
    assert refine.status == 409 and refine.error_code() == "not_ready"
    versions = api.call("GET", f"/api/task/{task['id']}/versions")
    assert versions.status == 200 and versions.json["versions"] == []


def test_delete_removes_a_task_and_refuses_while_it_runs(db_api: Api) -> None:
    busy = db_api.create(desired_action="count the lines")
    run = db_api.call("POST", f"/api/task/{busy['id']}/run", json={"input_text": "a\nb\n"})
    assert run.status == 202, run.raw  # runner "none": it stays queued
    refused = db_api.call("DELETE", f"/api/task/{busy['id'][:8]}")
    assert refused.status == 409 and refused.error_code() == "not_ready"
    assert "queued or running" in refused.json["error"]["message"]

    db_api.model.queue(answer_json(code=COUNT_LINES, name="other"))
    idle = db_api.create(desired_action="count more lines")
    gone = db_api.call("DELETE", f"/api/task/{idle['id'][:8]}")
    assert gone.status == 200 and gone.json == {"task_id": idle["id"], "deleted": True}
    assert db_api.call("GET", f"/api/task/{idle['id']}").status == 404
    assert db_api.call("DELETE", f"/api/task/{idle['id']}").status == 404
    assert db_api.call("GET", f"/api/task/{busy['id']}").status == 200
