"""Attack: rows that hold anything a run can produce, read by every door (API, Slack, terminal).

A stored row may come from an older version or a hostile run: 10,000-deep JSON, NaN and
Infinity, JSON cut at the cap, escape sequences, fake lines, bare @here. Every reader must show
it without crashing and neutralised for its medium.
"""

from __future__ import annotations

import argparse
import io
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from bot.api.run_models import RunOut
from bot.roles.cli_run import run_task
from bot.services.runs import OutputFileView, RunView
from bot.slack import blocks
from storage.kinds import ResultKind, RunStatus

DEEP = b"[" * 10_000 + b"]" * 10_000
NON_FINITE = b'{"mean": NaN, "max": Infinity, "min": -Infinity, "big": 1e999}'
CUT = b'[{"a": 1}, {"a": 2}, {"a'
ESCAPES = (
    "\x1b]52;c;ZXZpbA==\x07\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\\x1b[2J\x1b]0;t\x07"
)


def _view(**fields: Any) -> RunView:
    base = RunView(
        id="8f0c1b7e-0000-4000-8000-000000000000",
        task_id="3f2a9c00-0000-4000-8000-000000000000",
        version_number=1,
        status=RunStatus.SUCCEEDED,
        requested_by="U1",
        input_name=None,
        input_size=None,
        input_sha256=None,
        result_kind=ResultKind.JSON,
        result=b"1",
        result_truncated=False,
        stdout="",
        stderr="",
        error_type=None,
        error_message=None,
        traceback_tail=None,
        killed_reason=None,
        attempts=1,
        queued_at=datetime(2026, 1, 1, tzinfo=UTC),
        started_at=datetime(2026, 1, 1, tzinfo=UTC),
        finished_at=datetime(2026, 1, 1, tzinfo=UTC),
        duration_seconds=0.1,
    )
    return replace(base, **fields)


def _strict_json(body: object) -> Any:
    """What a strict client sees: the API body as bytes, parsed without NaN/Infinity."""
    from bot.web import json_body

    data = json_body(body)

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(data, parse_constant=refuse)


class _Out(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def _cli(view: RunView, monkeypatch: pytest.MonkeyPatch, *, tty: bool) -> tuple[int, str, str]:
    """``task run`` against a service that returns ``view``: (exit code, stdout, stderr)."""
    runs = SimpleNamespace(
        max_input_bytes=1 << 20,
        stale_after=timedelta(seconds=1),
        request=lambda *a, **k: view,
        get=lambda run_id: view,
        wait=lambda run_id, timeout: view,
    )
    services: Any = SimpleNamespace(runs=runs, executor=None)
    args = argparse.Namespace(
        id="3f2a9c", input=None, text=None, version=None, output_dir=None, progress=False
    )
    out, err = _Out(tty=tty), io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    code = run_task(args, services, out)
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("stored", [DEEP, NON_FINITE, CUT, b"\xff\xfe not json"])
def test_every_reader_copes_with_any_stored_json(
    stored: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = _view(result=stored)
    body = _strict_json(RunOut.of(view).model_dump(mode="json"))
    assert body["result_encoding"] in ("json", "text")
    if stored == NON_FINITE:
        assert body["result"] == {"mean": None, "max": None, "min": None, "big": None}
    assert blocks.run_message(view).blocks
    for tty in (False, True):
        code, out, _err = _cli(view, monkeypatch, tty=tty)
        assert code == 0 and out.strip()


def test_terminal_gets_no_escape_sequences(monkeypatch: pytest.MonkeyPatch) -> None:
    view = _view(
        status=RunStatus.FAILED,
        result_kind=ResultKind.TEXT,
        result=ESCAPES.encode(),
        stdout=ESCAPES + "\rfake line\n",
        stderr=ESCAPES,
        error_type="Err\x1b[1A",
        error_message=ESCAPES,
        traceback_tail=ESCAPES,
        files=(OutputFileView("a\x1b[2Jb.txt", 1, b"x"),),
    )
    _code, out, err = _cli(view, monkeypatch, tty=True)
    shown = out + err
    for control in ("\x1b", "\x07", "\r", "\x9b"):
        assert control not in shown
    assert "\\x1b]52" in shown  # shown, visibly, not obeyed
    assert "fake line" in shown


def test_slack_run_message_has_no_fake_lines_mentions_or_links() -> None:
    view = _view(
        status=RunStatus.FAILED,
        result_kind=ResultKind.NONE,
        result=None,
        error_type="ValueError\n:white_check_mark: *Run succeeded* in 0.01 s\n",
        error_message="<!channel> @here see <http://evil.example|docs>",
        stderr="oops\n:white_check_mark: Run `abc` succeeded @channel <@U123>",
        files=(OutputFileView("x`\n*y*.png", 1, b"x"),),
    )
    message = blocks.run_message(view)
    mrkdwn = [
        text
        for block in message.blocks
        for text in [block.get("text", {}).get("text")]
        + [e.get("text") for e in block.get("elements", []) if e.get("type") == "mrkdwn"]
        if text
    ]
    headline = mrkdwn[0]
    assert "\n" not in headline and headline.startswith(":x:")
    assert "\n" not in message.text
    for text in mrkdwn:
        assert "\n:white_check_mark:" not in text
        assert "<!" not in text and "<@" not in text and "<http" not in text
        assert "@here" not in text and "@channel" not in text
