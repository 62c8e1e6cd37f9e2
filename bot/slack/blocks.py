"""Block Kit, built by small pure functions. Listeners and flows never write block dicts inline.

This module holds a task's messages (generating, ready, failed, its metadata and code, a
refinement), the ephemeral answers and the run modal; a run's message is built in
``bot.slack.run_blocks`` and the pieces and escaping in ``bot.slack.block_kit``. Both are
re-exported here for the callers that use ``blocks.<name>``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from bot.services.views import (
    Refinement,
    TaskDetail,
    TaskSummary,
    TaskView,
    VersionView,
    checks_listing,
)
from bot.slack.actions import FILE_ACTION, FILE_BLOCK, RUN_ACTION, RUN_MODAL
from bot.slack.block_kit import (
    Block,
    Message,
    context,
    escape_inline,
    escape_mrkdwn,
    preformatted,
    section,
)
from bot.slack.run_blocks import RenderedResult, render_result, run_headline, run_message
from bot.slack.stop_blocks import STOP_GENERATION_ACTION, stop_button
from storage.kinds import TaskType, VersionState

__all__ = [
    "CODE_INLINE_LIMIT",
    "Block",
    "Message",
    "RenderedResult",
    "code_message",
    "escape_inline",
    "escape_mrkdwn",
    "notice",
    "refine_failed",
    "refinement_summary",
    "refining",
    "render_result",
    "run_button",
    "run_headline",
    "run_message",
    "run_modal",
    "task_failed",
    "task_generating",
    "task_list",
    "task_ready",
    "task_show",
    "version_metadata",
]

CODE_INLINE_LIMIT = 2800  # longer code goes as a .py file


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


def task_generating(task: TaskView) -> Message:
    # The fallback text is shown in notifications and is mrkdwn too: escaped like the blocks.
    text = f"Generating a task for: {escape_mrkdwn(task.desired_action)}"
    return Message(
        text,
        [
            section(
                ":hourglass_flowing_sand: Generating a task for: "
                f"_{escape_mrkdwn(task.desired_action[:500])}_"
            ),
            context(f"id `{task.id}` · {task.task_type} · asked by <@{task.creator}>"),
            stop_button(action_id=STOP_GENERATION_ACTION, value=task.id),
        ],
    )


def task_ready(detail: TaskDetail) -> Message:
    task, version = detail.task, detail.version
    title = version.metadata.get("title") or task.name or "Task"
    text = f"{escape_mrkdwn(str(title))} (v{version.number}) is ready"
    # issue 18: unattended runs use the pinned version; the root message says which
    pinned = f" · :pushpin: v{task.pinned_version} pinned" if task.pinned_version else ""
    return Message(
        text,
        [
            section(
                f":white_check_mark: *{escape_mrkdwn(str(title))}* `{task.name}` · "
                f"v{version.number} · ready{pinned}\n"
                f"{escape_mrkdwn(str(version.metadata.get('summary', '')))}"
            ),
            context(
                f"id `{task.id}` · {task.task_type} · asked by <@{task.creator}> · "
                "reply in the thread to change it, drop a file there to run it"
            ),
            run_button(task.id),
        ],
    )


def task_failed(task: TaskView, reason: str) -> Message:
    return Message(
        f"Could not generate the task: {escape_mrkdwn(reason)}",
        [
            section(
                f":x: Could not generate a task for: _{escape_mrkdwn(task.desired_action[:500])}_\n"
                f"{escape_mrkdwn(reason)}"
            ),
            context(f"id `{task.id}` · try `/task create` again, or describe it differently"),
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
    return escape_mrkdwn(line) + (f" · replaced {escape_mrkdwn(replaced)}" if replaced else "")


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
        f"*{escape_mrkdwn(str(meta.get('title', task.name)))}* · v{version.number} · "
        f"`{task.task_type}`",
        escape_mrkdwn(str(meta.get("summary", ""))),
        f"*Input:* {escape_mrkdwn(_io_line(meta.get('inputs')))}",
        f"*Output:* {escape_mrkdwn(_io_line(meta.get('outputs')))}",
        f"*Imports:* {escape_mrkdwn(deps)}",
        f"*Checks:* {_check_line(version)}",
    ]
    return Message(
        f"v{version.number} of {task.name}",
        [
            section("\n".join(lines)),
            context(escape_mrkdwn(f"{version.cost_line} · prompt {version.prompt_version}")),
            section(how),
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
        section(f":pencil2: *v{version.number}*: {escape_mrkdwn(summary)}"),
    ]
    if len(diff) <= CODE_INLINE_LIMIT:
        blocks.append(preformatted(diff))
    else:
        blocks.append(context("The diff is long: it is attached as a file."))
    return Message(f"v{version.number}: {escape_mrkdwn(summary)}", blocks)


def refining(feedback: str) -> Message:
    return Message(
        "Working on it…",
        [
            section(
                ":hourglass_flowing_sand: Working on the next version: "
                f"_{escape_mrkdwn(feedback[:500])}_"
            )
        ],
    )


def refine_failed(reason: str) -> Message:
    return Message(
        f"Could not make the next version: {reason}",
        [
            section(
                f":x: Could not make the next version: {escape_mrkdwn(reason)}\n"
                "The current version is unchanged."
            )
        ],
    )


# --- ephemeral answers ------------------------------------------------------------------


def task_list(summaries: Sequence[TaskSummary]) -> Message:
    if not summaries:
        return Message(
            "No tasks in this channel yet.",
            [section("No tasks in this channel yet. Start one: `/task create <what you need>`")],
        )
    lines = []
    for s in summaries:
        t = s.task
        version = f"v{t.current_version}" if t.current_version else "-"
        name = t.name or escape_mrkdwn(t.desired_action[:40])
        lines.append(
            f"`{t.id[:8]}` *{name}* · {version} · {t.state} · last run: {s.last_run_status or '-'}"
        )
    return Message("Recent tasks", [section("*Recent tasks in this channel*\n" + "\n".join(lines))])


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
        blocks.append(context("Checks"))
        blocks.append(preformatted(listing))
    if permalink:
        blocks.append(context(f"<{permalink}|Open the task's thread>"))
    return Message(meta.text, blocks)


def notice(text: str) -> Message:
    return Message(text, [section(text)])


def run_modal(*, task: TaskView, private_metadata: str) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": RUN_MODAL,
        "private_metadata": private_metadata,
        "title": {"type": "plain_text", "text": "Run task"},
        "submit": {"type": "plain_text", "text": "Run"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [
            section(
                f"Run *{escape_mrkdwn(task.name or 'task')}* (`{task.id[:8]}`) on one or more "
                "files; each file is one run."
            ),
            {
                "type": "input",
                "block_id": FILE_BLOCK,
                "label": {"type": "plain_text", "text": "Input files"},
                "element": {"type": "file_input", "action_id": FILE_ACTION, "max_files": 10},
            },
        ],
    }
