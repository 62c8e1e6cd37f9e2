"""The MCP server at /mcp, driven by the official SDK's own client over real HTTP."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client

from tests.e2e.slack.conftest import Stack, close_stack, make_stack
from tests.e2e.slack.test_flows import create
from tests.e2e.slack.test_triggers import V1, V2, ephemeral, refine

TOKEN = "mcp-secret-token"
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    built = make_stack(tmp_path, mcp_enabled=True, api_token=TOKEN, schedule_check_seconds=0)
    try:
        yield built
    finally:
        close_stack(built)


def call(stack: Stack, *steps: tuple[str, dict[str, Any]], token: str = TOKEN) -> list[Any]:
    """Connect with the SDK's client, list the tools, then call each (name, arguments);
    returns [tool names, then each call's structured result or its error text]."""

    async def session() -> list[Any]:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            transport = streamable_http_client(f"{stack.http.url}/mcp", http_client=http)
            async with Client(transport) as client:
                listed = await client.list_tools()
                out: list[Any] = [sorted(t.name for t in listed.tools)]
                for name, arguments in steps:
                    result = await client.call_tool(name, arguments)
                    if result.is_error:
                        out.append(
                            "error: " + " ".join(getattr(c, "text", "") for c in result.content)
                        )
                    else:
                        out.append(result.structured_content)
                return out

    return asyncio.run(session())


def test_an_mcp_client_lists_and_runs_a_task_over_http(stack: Stack) -> None:
    task_id, _ = create(stack, V1)
    tools, listed, ran = call(
        stack,
        ("list_tasks", {}),
        ("run_task", {"task_id": task_id[:8], "input_text": "hello mcp"}),
    )
    assert tools == ["get_run", "list_tasks", "run_task", "show_task"]
    (task,) = listed["result"]
    assert task["id"] == task_id and task["needs_input_file"] is True
    assert ran["status"] == "succeeded" and ran["result"] == {"v1_chars": 9}
    assert ran["version"] == 1
    _, again, shown = call(
        stack, ("get_run", {"run_id": ran["run_id"]}), ("show_task", {"task_id": task_id})
    )
    assert again["result"] == {"v1_chars": 9} and again["final"] is True
    assert "v1_chars" in shown["code"]
    run = stack.services.runs.get(ran["run_id"])  # recorded like any run
    assert run.requested_by == "mcp" and run.input_name == "input.txt"


def test_without_the_token_nothing_is_served(stack: Stack) -> None:
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        request = urllib.request.Request(
            f"{stack.http.url}/mcp",
            data=body,
            headers={"content-type": "application/json", **headers},
        )
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request)
        assert refused.value.code == 401
        assert refused.value.headers["WWW-Authenticate"].startswith("Bearer")
    assert stack.task_ids() == []


def test_mcp_runs_use_the_pinned_version_and_fetch_files_only_from_slack(stack: Stack) -> None:
    task_id, root_ts = create(stack, V1)
    refine(stack, root_ts, V2)
    stack.slack.command(f"pin {task_id[:8]} v1")
    ephemeral(stack, "pinned by")
    hosted = stack.mock.host_file("words.txt", b"one two three", "text/plain")
    _, pinned, elsewhere = call(
        stack,
        ("run_task", {"task_id": task_id, "file_url": hosted["url_private_download"]}),
        ("run_task", {"task_id": task_id, "file_url": "https://example.com/words.txt"}),
    )
    assert pinned["version"] == 1 and pinned["result"] == {"v1_chars": 13}
    assert elsewhere.startswith("error: ") and "not hosted by Slack" in elsewhere
    file_calls = stack.mock.of("file")
    assert file_calls and all(c.token == "xoxb-test" for c in file_calls)
    stack.slack.command(f"unpin {task_id[:8]}")
    ephemeral(stack, "Unpinned by")
    _, current = call(stack, ("run_task", {"task_id": task_id, "input_text": "a b c d"}))
    assert current["version"] == 2 and current["result"] == {"v2_words": 4}


def test_the_web_process_does_not_import_the_sdk_when_mcp_is_off(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from bot.config import Settings\n"
        "from bot.roles.web import build_server\n"
        f"s = Settings(slack_bot_token='xoxb-x', slack_signing_secret='s', "
        f"slack_api_url='http://127.0.0.1:9/api/', database_url='sqlite:///{tmp_path}/t.db', "
        "sandbox_insecure=True)\n"
        "from storage import migrate\nfrom storage.db import make_engine\n"
        "migrate.upgrade(make_engine(s.database_url))\n"
        "server = build_server(s)\n"
        "assert server.web.app.mcp is None\n"  # the app behind the edge limits
        "print(sorted(m for m in sys.modules if m == 'mcp' or m.startswith('mcp.')))\n"
        "server.close()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"
