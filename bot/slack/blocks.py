"""Block Kit, built by small pure functions. Listeners and flows never write block dicts inline."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from bot.services.outcomes import load_json_result
from bot.services.run_errors import RunErrorSharing, refine_notice
from bot.services.runs import RunView
from bot.services.stops import STOPPED
from bot.services.tables import as_table
from bot.services.views import (
    Refinement,
    TaskDetail,
    TaskSummary,
    TaskView,
    VersionView,
    checks_listing,
)
from bot.slack.stop_blocks import (
    STOP_GENERATION_ACTION,
    STOP_RUN_ACTION,
    stop_button,
    stopped_by,
)
from bot.slack.tables import SlackTable, table_block, table_note
from storage.models import RunStatus, TaskType, VersionState

Block = dict[str, Any]

CODE_INLINE_LIMIT = 2800  # longer code goes as a .py file
RESULT_INLINE_LIMIT = 2500  # longer results are previewed and attached in full
RUN_ACTION = "run_task"
RUN_MODAL = "run_with_file"
FILE_BLOCK = "input_files"
FILE_ACTION = "files"


def _mrkdwn(text: str) -> Block:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text[:3000]}}


def _context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text[:3000]}]}


# "@here" and friends typed as plain text: a word joiner after "@" keeps them from notifying.
_BARE_MENTION = re.compile(r"@(?=(?:here|channel|everyone)\b)", re.IGNORECASE)
# Line breaks (to fake a line of our own), other controls, zero-width and bidi characters.
_NOT_INLINE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]+")
_NOT_VERBATIM = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(text: str) -> str:
    """Untrusted text for mrkdwn: no links or mentions (<...>), no bare @here/@channel."""
    escaped = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return _BARE_MENTION.sub("@\u2060", _NOT_VERBATIM.sub("\ufffd", escaped))


def _inline(text: str) -> str:
    """Untrusted text for one line of mrkdwn (a name, an error type, a stderr excerpt): it
    cannot start a line of its own or close the code span or bold it is shown in."""
    flat = _NOT_INLINE.sub(" ", text).strip()
    return _escape(flat).replace("`", "\u02cb").replace("*", "\u2217")


escape_inline = _inline  # for the other Block Kit modules (home, shortcut)


def preformatted(text: str) -> Block:
    """A code block (rich_text_preformatted keeps it verbatim, no mrkdwn escaping issues);
    terminal and bidi controls are replaced, since a run's output may carry them."""
    clean = _NOT_VERBATIM.sub("\ufffd", text.replace("\r\n", "\n"))
    return {
        "type": "rich_text",
        "elements": [
            {"type": "rich_text_preformatted", "elements": [{"type": "text", "text": clean}]}
        ],
    }


def run_button(task_id: str) -> Block:
    return {
        "type": "actions",
        "elements": [
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Run"},
                "style": "primary",
                "action_id": RUN_ACTION,
                "value": task_id,
            }
        ],
    }


@dataclass(frozen=True)
class Message:
    text: str  # the notification / fallback text
    blocks: list[Block]
    attachments: list[dict[str, Any]] | None = None  # where Slack takes a table block


def task_generating(task: TaskView) -> Message:
    # The fallback text is shown in notifications and is mrkdwn too: escaped like the blocks.
    text = f"Generating a task for: {_escape(task.desired_action)}"
    return Message(
        text,
        [
            _mrkdwn(
                ":hourglass_flowing_sand: Generating a task for: "
                f"_{_escape(task.desired_action[:500])}_"
            ),
            _context(f"id `{task.id}` · {task.task_type} · asked by <@{task.creator}>"),
            stop_button(action_id=STOP_GENERATION_ACTION, value=task.id),
        ],
    )


def task_ready(detail: TaskDetail) -> Message:
    task, version = detail.task, detail.version
    title = version.metadata.get("title") or task.name or "Task"
    text = f"{_escape(str(title))} (v{version.number}) is ready"
    # issue 18: unattended runs use the pinned version; the root message says which
    pinned = f" · :pushpin: v{task.pinned_version} pinned" if task.pinned_version else ""
    return Message(
        text,
        [
            _mrkdwn(
                f":white_check_mark: *{_escape(str(title))}* `{task.name}` · v{version.number} · "
                f"ready{pinned}\n{_escape(str(version.metadata.get('summary', '')))}"
            ),
            _context(
                f"id `{task.id}` · {task.task_type} · asked by <@{task.creator}> · "
                "reply in the thread to change it, drop a file there to run it"
            ),
            run_button(task.id),
        ],
    )


def task_failed(task: TaskView, reason: str) -> Message:
    return Message(
        f"Could not generate the task: {_escape(reason)}",
        [
            _mrkdwn(
                f":x: Could not generate a task for: _{_escape(task.desired_action[:500])}_\n"
                f"{_escape(reason)}"
            ),
            _context(f"id `{task.id}` · try `/task create` again, or describe it differently"),
        ],
    )


def _io_line(value: Any) -> str:
    if isinstance(value, Mapping):
        formats = ", ".join(str(f) for f in value.get("formats", []) or [])
        return f"{value.get('description', '')}" + (f" ({formats})" if formats else "")
    return str(value or "")


def _check_line(version: VersionView) -> str:
    ready = version.state is VersionState.READY
    icon = ":white_check_mark:" if ready and version.check_results else ""
    if not version.check_results:
        icon = ":grey_question:"
    if version.state is VersionState.DRAFT:
        icon = ":warning: draft, not current:"
    replaced = ", ".join(f"`{r.name}` ({r.reason})" for r in version.replaced_checks)
    line = f"{icon} {version.check_summary}".strip()
    return _escape(line) + (f" · replaced {_escape(replaced)}" if replaced else "")


def version_metadata(detail: TaskDetail) -> Message:
    task, version = detail.task, detail.version
    meta = version.metadata
    deps = ", ".join(meta.get("dependencies", []) or []) or "standard library only"
    how = (
        "Drop a file in this thread to run it on that file, or click *Run*."
        if task.task_type is TaskType.PASSTHROUGH
        else "Click *Run* (or `/task run " + task.id[:8] + "`) to run it."
    )
    lines = [
        f"*{_escape(str(meta.get('title', task.name)))}* · v{version.number} · `{task.task_type}`",
        _escape(str(meta.get("summary", ""))),
        f"*Input:* {_escape(_io_line(meta.get('inputs')))}",
        f"*Output:* {_escape(_io_line(meta.get('outputs')))}",
        f"*Imports:* {_escape(deps)}",
        f"*Checks:* {_check_line(version)}",
    ]
    return Message(
        f"v{version.number} of {task.name}",
        [
            _mrkdwn("\n".join(lines)),
            _context(_escape(f"{version.cost_line} · prompt {version.prompt_version}")),
            _mrkdwn(how),
        ],
    )


def code_message(code: str, *, number: int) -> Message | None:
    """The code inline when short; None when it must go as a file."""
    if len(code) > CODE_INLINE_LIMIT:
        return None
    return Message(f"v{number} code", [preformatted(code)])


def refinement_summary(refinement: Refinement) -> Message:
    version = refinement.version
    summary = version.change_summary or "Updated."
    diff = refinement.diff or "(no change to the code)"
    blocks: list[Block] = [
        _mrkdwn(f":pencil2: *v{version.number}*: {_escape(summary)}"),
    ]
    if len(diff) <= CODE_INLINE_LIMIT:
        blocks.append(preformatted(diff))
    else:
        blocks.append(_context("The diff is long: it is attached as a file."))
    return Message(f"v{version.number}: {_escape(summary)}", blocks)


def refining(feedback: str) -> Message:
    return Message(
        "Working on it…",
        [
            _mrkdwn(
                f":hourglass_flowing_sand: Working on the next version: _{_escape(feedback[:500])}_"
            )
        ],
    )


def refine_failed(reason: str) -> Message:
    return Message(
        f"Could not make the next version: {reason}",
        [
            _mrkdwn(
                f":x: Could not make the next version: {_escape(reason)}\n"
                "The current version is unchanged."
            )
        ],
    )


# --- runs -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RenderedResult:
    preview: str | None  # shown inline (None: nothing to show)
    attachment: tuple[str, bytes] | None  # (filename, content) when the full result is attached
    table: SlackTable | None = None  # a list of flat records, as Slack's table block
    note: str | None = None  # what the table holds (and what of it is shown)


def render_result(run: RunView) -> RenderedResult:
    if run.result_kind in (None, "none") or run.result is None:
        return RenderedResult(None, None)
    if run.result_kind == "bytes":
        return RenderedResult(f"({len(run.result)} bytes, attached)", ("result.bin", run.result))
    if run.result_kind == "json":
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
    if run.result_kind == "json" and run.result and not run.result_truncated:
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
        subject += f" on `{_inline(run.input_name)}`"
    seconds = run.duration_seconds or 0.0
    outcome = {
        RunStatus.QUEUED: "queued",
        RunStatus.RUNNING: "running…" + _since(run),
        RunStatus.SUCCEEDED: f"succeeded in {seconds:.2f} s",
        RunStatus.FAILED: f"failed: *{_inline(run.error_type or 'Error')}*",
        RunStatus.TIMED_OUT: f"timed out after {seconds:.1f} s (wall-time limit)",
        RunStatus.KILLED: stopped_by(run.stopped_by)
        if run.killed_reason == STOPPED
        else f"killed: over the {_inline(run.killed_reason or 'resource')} limit",
    }[run.status]
    return f"{_STATUS_ICON[run.status]} {subject.capitalize()}: {outcome}"


def run_message(run: RunView, *, run_errors: RunErrorSharing = RunErrorSharing.SEND) -> Message:
    """The run's message in its thread; a failed one says what a reply sends to the model."""
    headline = run_headline(run)
    attachments: list[dict[str, Any]] | None = None
    blocks: list[Block] = [_mrkdwn(headline)]
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
            blocks.append(_context(_escape(rendered.note or "")))
    if not run.final:
        blocks.append(stop_button(action_id=STOP_RUN_ACTION, value=run.id))
    if run.final and run.stderr and run.status is not RunStatus.SUCCEEDED:
        blocks.append(_context("stderr: " + _inline(run.stderr.strip()[-500:])))
    if run.final and run.files:
        names = ", ".join(f"`{_inline(f.name)}`" for f in run.files)
        blocks.append(_context(f"Output files: {names} (uploaded below)"))
    if run.final and run.status in _REFINABLE:
        blocks.append(_context(_escape(refine_notice(run_errors))))
    if run.final:
        summary = result_size(run)
        if run.cpu_seconds is not None:
            summary.append(f"sandbox CPU {run.cpu_seconds:.2f} s")
        if summary:
            blocks.append(_context(" · ".join(summary)))
    return Message(headline.replace("*", "").replace("`", ""), blocks, attachments)


# --- ephemeral answers ------------------------------------------------------------------


def task_list(summaries: Sequence[TaskSummary]) -> Message:
    if not summaries:
        return Message(
            "No tasks in this channel yet.",
            [_mrkdwn("No tasks in this channel yet. Start one: `/task create <what you need>`")],
        )
    lines = []
    for s in summaries:
        t = s.task
        version = f"v{t.current_version}" if t.current_version else "-"
        name = t.name or _escape(t.desired_action[:40])
        lines.append(
            f"`{t.id[:8]}` *{name}* · {version} · {t.state} · last run: {s.last_run_status or '-'}"
        )
    return Message("Recent tasks", [_mrkdwn("*Recent tasks in this channel*\n" + "\n".join(lines))])


def task_show(detail: TaskDetail, *, permalink: str | None) -> Message:
    meta = version_metadata(detail)
    blocks = list(meta.blocks[:2])
    code = detail.version.code
    if len(code) > CODE_INLINE_LIMIT:
        code = code[:CODE_INLINE_LIMIT] + "\n# … (cut: the full code is in the task's thread)"
    blocks.append(preformatted(code))
    listing = checks_listing(detail.version)
    if listing:
        if len(listing) > CODE_INLINE_LIMIT:
            listing = listing[:CODE_INLINE_LIMIT] + "\n# … (cut)"
        blocks.append(_context("Checks"))
        blocks.append(preformatted(listing))
    if permalink:
        blocks.append(_context(f"<{permalink}|Open the task's thread>"))
    return Message(meta.text, blocks)


def notice(text: str) -> Message:
    return Message(text, [_mrkdwn(text)])


def run_modal(*, task: TaskView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": RUN_MODAL,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Run task"},
        "submit": {"type": "plain_text", "text": "Run"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            _mrkdwn(
                f"Run *{_escape(task.name or 'task')}* (`{task.id[:8]}`) on one or more files; "
                "each file is one run."
            ),
            {
                "type": "input",
                "block_id": FILE_BLOCK,
                "label": {"type": "plain_text", "text": "Input files"},
                "element": {"type": "file_input", "action_id": FILE_ACTION, "max_files": 10},
            },
        ],
    }


inline = _inline  # for the edge's other answers (bot.slack.shares)
# For sibling modules (issue 18's trigger flows): the same escaping, by public names.
escape_mrkdwn = _escape
escape_inline = _inline
