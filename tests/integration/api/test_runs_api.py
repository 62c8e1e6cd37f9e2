"""Run endpoints over real HTTP with the in-process pool and a real sandbox."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json

import pytest

from bot.api import make_api_app
from tests.fakes.openai_server import COUNT_LINES
from tests.integration.api.conftest import GENERATOR, Api, MakeApi, multipart

LIMIT = 1 * 2**20  # sandbox_max_input_mb=1 in the tests' settings
BYTES_BACK = "def run(input_path):\n    return open(input_path, 'rb').read()[:4]\n"
SIZE = "import os\n\ndef run(input_path):\n    return {'size': os.path.getsize(input_path)}\n"
WRITES = (
    "import os\n\ndef run(input_path):\n    os.makedirs('output', exist_ok=True)\n"
    "    with open('output/report.txt', 'w') as f:\n        f.write('done')\n"
    "    print('to stdout')\n    return 'written'\n"
)
BROKEN = "def run(input_path):\n    data = {}\n    return data['missing']\n"


def _upload(api: Api, task_id: str, data: bytes, name: str = "notes.txt", query: str = ""):
    body, content_type = multipart([("file", name, data)])
    return api.call(
        "POST", f"/api/task/{task_id}/run{query}", body=body, headers={"Content-Type": content_type}
    )


def test_multipart_upload_runs_and_result_is_readable(run_api: Api) -> None:
    task = run_api.create(COUNT_LINES)
    data = b"one\ntwo\nthree\n"
    reply = _upload(run_api, task["id"][:8], data)
    assert reply.status == 202, reply.raw
    accepted = reply.json
    assert accepted["status"] == "queued"
    assert accepted["task_id"] == task["id"] and accepted["version"] == 1
    assert accepted["links"] == {"run": f"/api/run/{accepted['run_id']}"}

    run = run_api.wait_run(accepted["run_id"])
    assert run["status"] == "succeeded", run
    assert run["result_kind"] == "json" and run["result_encoding"] == "json"
    assert run["result"] == {"lines": 3}
    assert run["input"] == {
        "name": "notes.txt",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert run["failure"] is None
    assert run["started_at"] and run["finished_at"] and run["duration_seconds"] is not None
    assert run["requested_by"] == "api"
    assert run["table"] is None  # one record is not a list of records


RECORDS = (
    "def run(input_path):\n"
    "    return [{'month': m, 'sales': i * 1000} for i, m in enumerate(['Jan', 'Feb', 'Mar'])]\n"
)


def test_a_list_of_records_carries_its_table(run_api: Api) -> None:
    task = run_api.create(RECORDS)
    reply = run_api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "x"})
    run = run_api.wait_run(reply.json["run_id"])
    assert run["status"] == "succeeded", run
    assert run["table"] == {"columns": ["month", "sales"], "numeric": [False, True], "rows": 3}
    assert run["result"][2] == {"month": "Mar", "sales": 2000}


def test_input_text_run_and_outputs(run_api: Api) -> None:
    task = run_api.create(WRITES)
    reply = run_api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "hello"})
    assert reply.status == 202, reply.raw
    run = run_api.wait_run(reply.json["run_id"])
    assert run["status"] == "succeeded", run
    assert run["result_encoding"] == "text" and run["result"] == "written"
    assert run["input"]["name"] == "input.txt" and run["input"]["size"] == 5
    assert run["stdout"].startswith("to stdout")
    [report] = run["files"]
    assert report["name"] == "report.txt" and report["size"] == 4
    assert base64.b64decode(report["content_base64"]) == b"done"
    assert report["content_omitted"] is False


def test_input_text_may_hold_nul(run_api: Api) -> None:
    task = run_api.create(BYTES_BACK)
    reply = run_api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "a\u0000bc"})
    assert reply.status == 202, reply.raw
    run = run_api.wait_run(reply.json["run_id"])
    assert base64.b64decode(run["result"]) == b"a\x00bc"


def test_bytes_result_is_base64(run_api: Api) -> None:
    task = run_api.create(BYTES_BACK)
    reply = _upload(run_api, task["id"], b"\x00\x01\x02\x03\xff")
    run = run_api.wait_run(reply.json["run_id"])
    assert run["result_kind"] == "bytes" and run["result_encoding"] == "base64"
    assert base64.b64decode(run["result"]) == b"\x00\x01\x02\x03"


def test_failed_run_reports_failure(run_api: Api) -> None:
    task = run_api.create(BROKEN)
    reply = run_api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "x"})
    run = run_api.wait_run(reply.json["run_id"])
    assert run["status"] == "failed"
    assert run["failure"]["type"] == "KeyError"
    assert "missing" in (run["failure"]["traceback_tail"] or run["failure"]["message"])
    assert run["result"] is None and run["result_encoding"] is None


def test_generator_run_with_empty_body_and_without_body(run_api: Api) -> None:
    task = run_api.create(GENERATOR, task_type="generator")
    for reply in (
        run_api.call("POST", f"/api/task/{task['id']}/run", json={}),
        run_api.call("POST", f"/api/task/{task['id']}/run"),
    ):
        assert reply.status == 202, reply.raw
        run = run_api.wait_run(reply.json["run_id"])
        assert run["status"] == "succeeded", run
        assert run["result"] == "hello from a generator"
        assert run["input"] is None
    with_input = run_api.call("POST", f"/api/task/{task['id']}/run", json={"input_text": "x"})
    assert with_input.status == 422 and with_input.error_code() == "invalid_input"
    assert "generator" in with_input.json["error"]["message"]


def test_passthrough_needs_input(api: Api) -> None:
    task = api.create()
    reply = api.call("POST", f"/api/task/{task['id']}/run", json={})
    assert reply.status == 422 and reply.error_code() == "invalid_input"


def test_version_selection(run_api: Api) -> None:
    task = run_api.create(COUNT_LINES)
    assert run_api.refine(task["id"], SIZE).status == 201
    data = b"a\nb\n"

    latest = run_api.wait_run(_upload(run_api, task["id"], data).json["run_id"])
    assert latest["version"] == 2 and latest["result"] == {"size": 4}

    by_query = _upload(run_api, task["id"], data, query="?version=1")
    assert by_query.json["version"] == 1
    assert run_api.wait_run(by_query.json["run_id"])["result"] == {"lines": 2}

    body, content_type = multipart([("file", "a.txt", data), ("version", None, b"1")])
    by_form = run_api.call(
        "POST", f"/api/task/{task['id']}/run", body=body, headers={"Content-Type": content_type}
    )
    assert by_form.status == 202 and by_form.json["version"] == 1

    by_json = run_api.call(
        "POST", f"/api/task/{task['id']}/run", json={"input_text": "x\n", "version": 1}
    )
    assert by_json.status == 202 and by_json.json["version"] == 1
    assert run_api.wait_run(by_json.json["run_id"])["result"] == {"lines": 1}

    clash = run_api.call(
        "POST", f"/api/task/{task['id']}/run?version=2", json={"input_text": "x", "version": 1}
    )
    assert clash.status == 422 and clash.error_code() == "invalid_input"
    missing = run_api.call(
        "POST", f"/api/task/{task['id']}/run", json={"input_text": "x", "version": 7}
    )
    assert missing.status == 404 and missing.error_code() == "not_found"


def test_upload_exactly_at_the_limit_runs(run_api: Api) -> None:
    task = run_api.create(SIZE)
    reply = _upload(run_api, task["id"], b"x" * LIMIT)
    assert reply.status == 202, reply.raw
    run = run_api.wait_run(reply.json["run_id"])
    assert run["status"] == "succeeded", run
    assert run["result"] == {"size": LIMIT} and run["input"]["size"] == LIMIT


def test_oversized_inputs_are_413(api: Api) -> None:
    task_id = api.create()["id"]
    over = _upload(api, task_id, b"x" * (LIMIT + 1))
    assert over.status == 413 and over.error_code() == "too_large"
    text = api.call("POST", f"/api/task/{task_id}/run", json={"input_text": "x" * (LIMIT + 1)})
    assert text.status == 413 and text.error_code() == "too_large"
    huge = _upload(api, task_id, b"x" * (LIMIT + 200 * 1024))
    assert huge.status == 413 and huge.error_code() == "too_large"
    assert "limit" in huge.json["error"]["message"]
    assert api.services.runs.queued_ids() == []


def _collect(sent: list[dict[str, object]]):  # type: ignore[no-untyped-def]
    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    return send


def test_declared_length_over_the_limit_is_refused_before_reading(api: Api) -> None:
    """Over HTTP a client may send the body anyway; this calls the ASGI app directly with a
    body that must never be asked for."""

    async def untouchable() -> dict[str, object]:
        raise AssertionError("the body was read")

    task_id = api.create()["id"]
    app = make_api_app(api.services)
    for content_type in ("multipart/form-data; boundary=x", "application/json"):
        sent: list[dict[str, object]] = []
        send = _collect(sent)

        scope = {
            "type": "http",
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": f"/api/task/{task_id}/run",
            "raw_path": f"/api/task/{task_id}/run".encode(),
            "root_path": "",
            "query_string": b"",
            "headers": [
                (b"content-type", content_type.encode()),
                (b"content-length", str(10 * LIMIT).encode()),
                (b"authorization", f"Bearer {api.token}".encode()),
            ],
            "client": ("127.0.0.1", 1),
            "server": ("127.0.0.1", 80),
        }
        asyncio.run(app(scope, untouchable, send))  # type: ignore[arg-type]
        assert sent[0]["status"] == 413
        body = b"".join(m.get("body", b"") for m in sent[1:])  # type: ignore[misc]
        assert json.loads(body)["error"]["code"] == "too_large"


def test_chunked_upload_without_length(api: Api) -> None:
    import http.client
    from urllib.parse import urlsplit

    task_id = api.create()["id"]
    parts = urlsplit(api.url)
    payload = json.dumps({"input_text": "a\nb\n"}).encode()
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    conn.request(
        "POST",
        f"/api/task/{task_id}/run",
        body=iter([payload[:5], payload[5:]]),
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "application/json"},
        encode_chunked=True,
    )
    resp = conn.getresponse()
    assert resp.status == 202, resp.read()
    conn.close()


@pytest.mark.parametrize(
    ("parts", "code", "status"),
    [
        ([], "bad_request", 400),
        ([("other", None, b"x")], "invalid_input", 422),
        ([("file", "a.txt", b"x"), ("file", "b.txt", b"y")], "invalid_input", 422),
        ([("file", "a.txt", b"x"), ("version", None, b"zero")], "invalid_input", 422),
        ([("version", None, b"1")], "invalid_input", 422),
    ],
)
def test_bad_multipart(api: Api, parts: list, code: str, status: int) -> None:
    task_id = api.create()["id"]
    if parts:
        body, content_type = multipart(parts)
    else:
        body, content_type = b"garbage", "multipart/form-data; boundary=nope"
    reply = api.call(
        "POST", f"/api/task/{task_id}/run", body=body, headers={"Content-Type": content_type}
    )
    assert reply.status == status, reply.raw
    assert reply.error_code() == code


def test_multipart_without_boundary_is_400(api: Api) -> None:
    task_id = api.create()["id"]
    body, _ = multipart([("file", "a.txt", b"x")])
    reply = api.call(
        "POST",
        f"/api/task/{task_id}/run",
        body=body,
        headers={"Content-Type": "multipart/form-data"},
    )
    assert reply.status == 400 and reply.error_code() == "bad_request"


def test_run_unknown_fields_and_types(api: Api) -> None:
    task_id = api.create()["id"]
    for body, word in (
        ({"input_text": "x", "colour": "red"}, "colour"),
        ({"input_text": 3}, "input_text"),
        ({"input_text": "x", "version": "1"}, "version"),
        ({"input_text": "x", "version": True}, "version"),
        ({"input_text": "x", "version": 0}, "version"),
        ({"input_text": "\ud800"}, "input_text"),
    ):
        reply = api.call("POST", f"/api/task/{task_id}/run", json=body)
        assert reply.status == 422, (body, reply.raw)
        assert reply.error_code() == "invalid_input"
        assert word in reply.json["error"]["message"]
    unknown = api.call("POST", "/api/task/0123456789ab/run", json={"input_text": "x"})
    assert unknown.status == 404 and unknown.error_code() == "not_found"
    wrong_type = api.call(
        "POST", f"/api/task/{task_id}/run", body=b"x", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415 and wrong_type.error_code() == "unsupported_media_type"


def test_a_waiting_client_gets_the_run_once_it_ends(run_api: Api, api: Api) -> None:
    task = run_api.create(COUNT_LINES)
    run_id = run_api.call(
        "POST", f"/api/task/{task['id']}/run", json={"input_text": "a\nb\n"}
    ).json["run_id"]
    done = run_api.call("GET", f"/api/run/{run_id}?wait=30")  # one request, no polling
    assert done.status == 200 and done.json["final"], done.json
    assert done.json["status"] == "succeeded" and done.json["result"] == {"lines": 2}

    queued_task = api.create(COUNT_LINES)  # runner "none": the run stays queued
    queued = api.call("POST", f"/api/task/{queued_task['id']}/run", json={"input_text": "x"}).json[
        "run_id"
    ]
    waited = api.call("GET", f"/api/run/{queued}?wait=0.3")  # the wait runs out: as it is
    assert waited.status == 200 and waited.json["status"] == "queued"
    assert not waited.json["final"]
    for bad in ("-1", "31", "soon"):
        refused = api.call("GET", f"/api/run/{queued}?wait={bad}")
        assert refused.status == 422 and "wait" in refused.json["error"]["message"]


def test_unknown_run_ids(api: Api) -> None:
    for run_id in ("0123abcd-0000-4000-8000-000000000000", "nope", "x" * 300):
        reply = api.call("GET", f"/api/run/{run_id}")
        assert reply.status == 404 and reply.error_code() == "not_found"


@pytest.mark.postgres
def test_runs_on_postgres(make_api: MakeApi, postgres_url: str) -> None:
    api = make_api(postgres_url, runner="local")
    task = api.create(COUNT_LINES)
    reply = _upload(api, task["id"], b"1\n2\n")
    run = api.wait_run(reply.json["run_id"])
    assert run["status"] == "succeeded" and run["result"] == {"lines": 2}
