"""The API's edge: auth, the API switched off, routing, content types, body validation, errors."""

from __future__ import annotations

import logging

import pytest

from tests.integration.api.conftest import TOKEN, Api, MakeApi

ENDPOINTS = [
    ("POST", "/api/task/create"),
    ("GET", "/api/task/0123456789ab"),
    ("POST", "/api/task/0123456789ab/refine"),
    ("POST", "/api/task/0123456789ab/run"),
    ("GET", "/api/task/0123456789ab/versions"),
    ("GET", "/api/run/0123456789ab"),
    ("GET", "/api/tasks"),
    ("PUT", "/api/task/0123456789ab/pin"),
    ("DELETE", "/api/task/0123456789ab/pin"),
]


@pytest.mark.parametrize(("method", "path"), ENDPOINTS)
def test_missing_and_wrong_token_are_401(api: Api, method: str, path: str) -> None:
    for token, headers in (
        (None, {}),
        ("wrong-token", {}),
        (None, {"Authorization": f"Basic {TOKEN}"}),
        (None, {"Authorization": "Bearer"}),
        (None, {"Authorization": f"Bearer {TOKEN}x"}),
    ):
        reply = api.call(method, path, json={}, token=token, headers=headers)
        assert reply.status == 401, (token, headers, reply.raw)
        assert reply.error_code() == "unauthorized"
        assert reply.headers["www-authenticate"].startswith("Bearer")


def test_token_scheme_is_case_insensitive(api: Api) -> None:
    reply = api.call("GET", "/api/tasks", token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert reply.status == 200


@pytest.mark.parametrize(("method", "path"), [*ENDPOINTS, ("GET", "/api/openapi.json")])
def test_api_is_off_without_a_token(
    make_api: MakeApi, sqlite_url: str, method: str, path: str
) -> None:
    api = make_api(sqlite_url, api_token="")
    reply = api.call(method, path, json={}, token="anything")
    assert reply.status == 404 and reply.error_code() == "not_found"
    assert "off" in reply.json["error"]["message"]
    health = api.call("GET", "/healthz", token=None)
    assert health.status == 200


def test_openapi_is_public_while_the_api_is_on(api: Api) -> None:
    reply = api.call("GET", "/api/openapi.json", token=None)
    assert reply.status == 200
    doc = reply.json
    assert doc["openapi"].startswith("3.1")
    scheme = doc["components"]["securitySchemes"]["bearerAuth"]
    assert (scheme["type"], scheme["scheme"]) == ("http", "bearer")
    assert "personal token" in scheme["description"]
    run = doc["paths"]["/api/task/{id}/run"]["post"]
    assert run["security"] == [{"bearerAuth": ["run"]}] and "403" in run["responses"]
    assert doc["paths"]["/api/tasks"]["get"]["security"] == [{"bearerAuth": ["read"]}]
    assert doc["paths"]["/api/task/create"]["post"]["security"] == [{"bearerAuth": ["write"]}]
    assert set(doc["x-scopes"]) == {"read", "run", "write"}
    assert set(doc["paths"]) == {path for _, path in ENDPOINTS[:1]} | {
        "/api/task/{id}",
        "/api/task/{id}/refine",
        "/api/task/{id}/run",
        "/api/task/{id}/versions",
        "/api/run/{id}",
        "/api/run/{id}/stop",
        "/api/tasks",
        "/api/usage",
        "/api/task/{id}/pin",
        "/api/audit",
        "/api/openapi.json",
    }
    post = api.call("POST", "/api/openapi.json", json={})
    assert post.status == 405 and post.headers["allow"] == "GET"


def test_unknown_routes_and_wrong_methods(api: Api) -> None:
    for path in ("/api", "/api/", "/api/nope", "/api/task", "/api/task/0123456789ab/delete"):
        reply = api.call("GET", path)
        assert reply.status == 404 and reply.error_code() == "not_found", path
    for method, path, allow in (
        ("GET", "/api/task/create", "POST"),
        ("PUT", "/api/task/0123456789ab", "GET, DELETE"),
        ("GET", "/api/task/0123456789ab/run", "POST"),
        ("PUT", "/api/tasks", "GET"),
        ("POST", "/api/run/0123456789ab", "GET"),
    ):
        reply = api.call(method, path)
        assert reply.status == 405, (method, path)
        assert reply.error_code() == "method_not_allowed"
        assert reply.headers["allow"] == allow


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"{not json", "application/json", 400, "bad_request"),
        (b"", "application/json", 400, "bad_request"),
        (b"[1, 2]", "application/json", 400, "bad_request"),
        (b'"text"', "application/json", 400, "bad_request"),
        (b"\xff\xfe{}", "application/json", 400, "bad_request"),
        (b"[" * 100000 + b"]" * 100000, "application/json", 413, "too_large"),
        (b'{"desired_action": "x"}', "text/plain", 415, "unsupported_media_type"),
        (b'{"desired_action": "x"}', "", 415, "unsupported_media_type"),
        (b"x" * (64 * 1024 + 1), "application/json", 413, "too_large"),
    ],
)
def test_malformed_bodies(api: Api, body: bytes, content_type: str, status: int, code: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    reply = api.call("POST", "/api/task/create", body=body, headers=headers)
    assert reply.status == status, reply.raw
    assert reply.error_code() == code


def test_deeply_nested_json_is_400_not_500(api: Api) -> None:
    body = b"[" * 30000 + b"]" * 30000
    reply = api.call(
        "POST", "/api/task/create", body=body, headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400 and reply.error_code() == "bad_request"


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({}, "desired_action"),
        ({"task_type": "passthrough"}, "desired_action"),
        ({"desired_action": 42}, "desired_action"),
        ({"desired_action": ["a"]}, "desired_action"),
        ({"desired_action": "x", "task_type": "other"}, "task_type"),
        ({"desired_action": "x", "task_type": 1}, "task_type"),
        ({"desired_action": "x", "extra": 1}, "extra"),
        ({"desired_action": "x" * 4001}, "4000"),
        ({"desired_action": "   "}, "Say what"),
        ({"desired_action": "nul\u0000char"}, "NUL"),
        ({"desired_action": "\ud800"}, "Unicode"),
    ],
)
def test_create_validation(api: Api, body: dict, word: str) -> None:
    reply = api.call("POST", "/api/task/create", json=body)
    assert reply.status == 422, reply.raw
    assert reply.error_code() == "invalid_input"
    assert word in reply.json["error"]["message"]
    assert api.model.prompts == []


def test_desired_action_at_the_length_limit_is_accepted(api: Api) -> None:
    body = api.create(desired_action="y" * 4000)
    assert len(body["desired_action"]) == 4000


@pytest.mark.parametrize(
    ("body", "word"),
    [
        ({}, "feedback"),
        ({"feedback": 1}, "feedback"),
        ({"feedback": "x", "more": True}, "more"),
        ({"feedback": "x" * 4001}, "4000"),
    ],
)
def test_refine_validation(api: Api, body: dict, word: str) -> None:
    task = api.create()
    reply = api.call("POST", f"/api/task/{task['id']}/refine", json=body)
    assert reply.status == 422, reply.raw
    assert reply.error_code() == "invalid_input"
    assert word in reply.json["error"]["message"]


def test_unexpected_errors_are_500_in_the_error_shape(
    api: Api, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def boom(**_: object) -> None:
        raise RuntimeError("database on fire")

    monkeypatch.setattr(api.services.tasks, "list", boom)
    with caplog.at_level(logging.ERROR, logger="bot.api.guard"):
        reply = api.call("GET", "/api/tasks")
    assert reply.status == 500 and reply.error_code() == "internal_error"
    assert "fire" not in reply.json["error"]["message"]
    assert any("database on fire" in (r.exc_text or "") for r in caplog.records)


def test_responses_are_json_and_not_cached(api: Api) -> None:
    for reply in (api.call("GET", "/api/tasks"), api.call("GET", "/api/nope")):
        assert reply.headers["content-type"] == "application/json"
        assert reply.headers["cache-control"] == "no-store"


def test_unknown_query_parameters_are_refused(api: Api) -> None:
    for path in ("/api/tasks?limit=5&colour=red", "/api/task/0123456789ab?v=1"):
        reply = api.call("GET", path)
        assert reply.status == 422 and reply.error_code() == "invalid_input"
        assert "Unknown query parameter" in reply.json["error"]["message"]
    repeated = api.call("GET", "/api/tasks?limit=1&limit=2")
    assert repeated.status == 422 and "more than once" in repeated.json["error"]["message"]
