"""A run's message in its task's thread: its headline (status, what it ran on, how it ended),
its result as text, JSON or a table, and what it produced."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bot.services.outcomes import load_json_result
from bot.services.run_errors import RunErrorSharing, refine_notice
from bot.services.stops import STOPPED
from bot.services.tables import as_table
from bot.slack.block_kit import (
    Block,
    Message,
    context,
    escape_inline,
    escape_mrkdwn,
    preformatted,
    section,
)
from bot.slack.stop_blocks import STOP_RUN_ACTION, stop_button, stopped_by
from bot.slack.tables import SlackTable, table_block, table_note
from storage.kinds import ResultKind, RunStatus

if TYPE_CHECKING:
    from bot.services.runs import RunView

RESULT_INLINE_LIMIT = 2500  # longer results are previewed and attached in full


@dataclass(frozen=True)
class RenderedResult:
    preview: str | None  # shown inline (None: nothing to show)
    attachment: tuple[str, bytes] | None  # (filename, content) when the full result is attached
    table: SlackTable | None = None  # a list of flat records, as Slack's table block
    note: str | None = None  # what the table holds (and what of it is shown)


def render_result(run: RunView) -> RenderedResult:
    if run.result_kind in (None, ResultKind.NONE) or run.result is None:
        return RenderedResult(None, None)
    if run.result_kind is ResultKind.BYTES:
        return RenderedResult(f"({len(run.result)} bytes, attached)", ("result.bin", run.result))
    if run.result_kind is ResultKind.JSON:
        ok, value = load_json_result(run.result)
        if not ok:
            value = run.result.decode("utf-8", "replace")
        table = as_table(value) if not run.result_truncated else None
        if table is not None:
            shown = table_block(table)
            csv = ("result.csv", shown.csv) if shown.csv is not None else None
            return RenderedResult(None, csv, table=shown, note=table_note(table, shown))
        text = json.dumps(value, indent=2, ensure_ascii=False)
        name = "result.json"
        full = json.dumps(value, indent=2, ensure_ascii=False).encode()
    else:
        text = run.result.decode("utf-8", "replace")
        name, full = "result.txt", run.result
    if run.result_truncated:
        return RenderedResult(
            text[:RESULT_INLINE_LIMIT] + "\n… (cut at the output limit)", (name, full)
        )
    if len(text) > RESULT_INLINE_LIMIT:
        return RenderedResult(
            text[:RESULT_INLINE_LIMIT] + "\n… (full result attached)", (name, full)
        )
    return RenderedResult(text or "(empty)", None)


def result_size(run: RunView) -> list[str]:
    """What a finished run produced, by size: rows, files, wall time."""
    parts = []
    if run.result_kind is ResultKind.JSON and run.result and not run.result_truncated:
        ok, value = load_json_result(run.result)
        if ok and isinstance(value, list):
            parts.append(f"{len(value):,} row{'s' * (len(value) != 1)}")
    if run.files:
        total = sum(f.size for f in run.files)
        size = f"{total / 1024:.1f} KiB" if total >= 1024 else f"{total} bytes"
        parts.append(f"{len(run.files)} file{'s' * (len(run.files) != 1)} ({size})")
    if run.duration_seconds is not None:
        parts.append(f"{run.duration_seconds:.2f} s")
    return parts


# Ended runs a reply in the thread can fix ("fix it"): their error goes to the model.
_REFINABLE = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.KILLED)
_STATUS_ICON = {
    RunStatus.QUEUED: ":hourglass:",
    RunStatus.RUNNING: ":gear:",
    RunStatus.SUCCEEDED: ":white_check_mark:",
    RunStatus.FAILED: ":x:",
    RunStatus.TIMED_OUT: ":alarm_clock:",
    RunStatus.KILLED: ":no_entry:",
}


def _since(run: RunView) -> str:
    """When a running run started, in each reader's own time zone (Slack's date token)."""
    if run.started_at is None:
        return ""
    fallback = f"{run.started_at:%H:%M:%S} UTC"
    return f" (since <!date^{int(run.started_at.timestamp())}^{{time_secs}}|{fallback}>)"


def run_headline(run: RunView) -> str:
    subject = f"run `{run.id[:8]}` of v{run.version_number}"
    if run.input_name:
        subject += f" on `{escape_inline(run.input_name)}`"
    seconds = run.duration_seconds or 0.0
    outcome = {
        RunStatus.QUEUED: "queued",
        RunStatus.RUNNING: "running…" + _since(run),
        RunStatus.SUCCEEDED: f"succeeded in {seconds:.2f} s",
        RunStatus.FAILED: f"failed: *{escape_inline(run.error_type or 'Error')}*",
        RunStatus.TIMED_OUT: f"timed out after {seconds:.1f} s (wall-time limit)",
        RunStatus.KILLED: stopped_by(run.stopped_by)
        if run.killed_reason == STOPPED
        else f"killed: over the {escape_inline(run.killed_reason or 'resource')} limit",
    }[run.status]
    return f"{_STATUS_ICON[run.status]} {subject.capitalize()}: {outcome}"


def run_message(run: RunView, *, run_errors: RunErrorSharing = RunErrorSharing.SEND) -> Message:
    """The run's message in its thread; a failed one says what a reply sends to the model."""
    headline = run_headline(run)
    attachments: list[dict[str, Any]] | None = None
    blocks: list[Block] = [section(headline)]
    if run.status is RunStatus.FAILED:
        detail = (run.error_message or "").strip()
        tail = "\n".join((run.traceback_tail or "").strip().splitlines()[-8:])
        blocks.append(
            preformatted(f"{detail}\n{tail}".strip()[:RESULT_INLINE_LIMIT] or "(no details)")
        )
    elif run.status is RunStatus.SUCCEEDED:
        rendered = render_result(run)
        if rendered.preview is not None:
            blocks.append(preformatted(rendered.preview))
        if rendered.table is not None:
            attachments = [{"blocks": [rendered.table.block]}]
            blocks.append(context(escape_mrkdwn(rendered.note or "")))
    if not run.final:
        blocks.append(stop_button(action_id=STOP_RUN_ACTION, value=run.id))
    if run.final and run.stderr and run.status is not RunStatus.SUCCEEDED:
        blocks.append(context("stderr: " + escape_inline(run.stderr.strip()[-500:])))
    if run.final and run.files:
        names = ", ".join(f"`{escape_inline(f.name)}`" for f in run.files)
        blocks.append(context(f"Output files: {names} (uploaded below)"))
    if run.final and run.status in _REFINABLE:
        blocks.append(context(escape_mrkdwn(refine_notice(run_errors))))
    if run.final:
        summary = result_size(run)
        if run.cpu_seconds is not None:
            summary.append(f"sandbox CPU {run.cpu_seconds:.2f} s")
        if summary:
            blocks.append(context(" · ".join(summary)))
    return Message(headline.replace("*", "").replace("`", ""), blocks, attachments)
