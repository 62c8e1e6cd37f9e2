"""The terminal's task commands (``python -m bot task create|refine|show|list|...``) over the
services built in this process; ``bot.roles.cli`` parses and calls them."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC
from typing import TextIO

from bot.prog import hint
from bot.progress import Progress, interruptibly, wanted
from bot.services.container import Services
from bot.services.errors import InvalidInput
from bot.services.views import TaskDetail, checks_listing
from storage.kinds import RequestKind, VersionState

LIST_HEADER = (
    f"{'ID':<36}  {'VER':>4}  {'STATE':<10}  {'LAST RUN':<9}  {'CREATED (UTC)':<16}  NAME\n"
)


def print_detail(detail: TaskDetail, out: TextIO, *, diff: str | None = None) -> None:
    task, version = detail.task, detail.version
    out.write(f"{task.id}\n")
    out.write(
        f"# {version.metadata.get('title', task.name)} (v{version.number}, {task.task_type})\n"
    )
    out.write(f"# asked: {task.desired_action}\n")
    if version.request_kind is RequestKind.REFINE:
        out.write(f"# v{version.number} asked: {version.request_text}\n")
    out.write(json.dumps(dict(version.metadata), indent=2, ensure_ascii=False) + "\n")
    state = " (draft: not current)" if version.state is VersionState.DRAFT else ""
    out.write(f"# checks: {version.check_summary}{state}\n")
    out.write(f"# cost: {version.cost_line} (prompt {version.prompt_version})\n")
    for replaced in version.replaced_checks:
        out.write(f"#   replaced {replaced.name}: {replaced.reason}\n")
    if version.change_summary:
        out.write(f"\n# changed: {version.change_summary}\n")
    if diff:
        out.write("\n" + diff + ("" if diff.endswith("\n") else "\n"))
    out.write(f"\n# function.py\n{version.code}")
    if not version.code.endswith("\n"):
        out.write("\n")


def task_command(args: argparse.Namespace, services: Services, out: TextIO, err: TextIO) -> int:
    tasks = services.tasks
    services.housekeeping.fail_abandoned()
    if args.action == "create":
        return _create(args, services, out, err)
    if args.action == "refine":
        with Progress(
            f"writing the next version of task {args.id} ({services.settings.openai_model})",
            stream=err,
            enabled=wanted(err, asked=args.progress),
        ):
            refinement = interruptibly(
                lambda: tasks.refine(args.id, feedback=args.feedback, requested_by="cli")
            )
        print_detail(TaskDetail(refinement.task, refinement.version), out, diff=refinement.diff)
    elif args.action == "show":
        detail = tasks.show(args.id, version=args.version)
        print_detail(detail, out)
        if detail.version.checks:
            out.write(f"\n# checks\n{checks_listing(detail.version)}\n")
    elif args.action == "run":
        from bot.roles.cli_run import run_task

        return run_task(args, services, out)
    elif args.action == "list":
        summaries = tasks.list(limit=50)
        if not summaries:
            out.write(f'No tasks yet. Create one: {hint("task create")} "..."\n')
            return 0
        out.write(LIST_HEADER)
        for s in summaries:
            version = f"v{s.task.current_version}" if s.task.current_version else "-"
            created = s.task.created_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M")
            out.write(
                f"{s.task.id}  {version:>4}  {s.task.state:<10}  {s.last_run_status or '-':<9}  "
                f"{created:<16}  {s.task.name or s.task.desired_action[:40]}\n"
            )
    elif args.action == "usage":
        from bot.roles.cli_usage import print_usage

        print_usage(services.usage.report(team_id="", user_id="cli", days=args.days), out)
    elif args.action == "export":
        path = tasks.export(args.id, version=args.version, directory=args.dir, overwrite=args.force)
        out.write(f"{path / 'function.py'}\n{path / 'metadata.json'}\n")
    elif args.action == "delete":
        return _delete(args, services, out, err)
    elif args.action in ("pin", "unpin"):  # issue 18
        return _pin(args, services, out)
    return 0


def _pin(args: argparse.Namespace, services: Services, out: TextIO) -> int:
    if args.action == "unpin":
        task = services.pins.unpin(args.id)
        out.write(f"{task.id}: unpinned; unattended runs use v{task.current_version}\n")
        return 0
    number = str(args.version).lower().removeprefix("v")
    if not number.isdigit():
        raise InvalidInput(f"{args.version!r} is not a version: give e.g. 2 or v2.")
    task = services.pins.pin(args.id, version=int(number))
    out.write(f"{task.id}: v{task.pinned_version} pinned for scheduled, workflow and MCP runs\n")
    return 0


def _create(args: argparse.Namespace, services: Services, out: TextIO, err: TextIO) -> int:
    """Create, with progress on stderr; Ctrl-C leaves the task failed, never ``generating``."""
    task = services.tasks.start(
        description=args.description, task_type=args.task_type, requested_by="cli", source="cli"
    )
    try:
        with Progress(
            f"writing the code for task {task.id[:8]} ({services.settings.openai_model})",
            stream=err,
            enabled=wanted(err, asked=args.progress),
        ):
            detail = interruptibly(lambda: services.tasks.generate_first(task.id))
    except BaseException:
        services.housekeeping.interrupted(task.id)  # no-op unless it is still generating
        raise
    print_detail(detail, out)
    return 0


def _delete(args: argparse.Namespace, services: Services, out: TextIO, err: TextIO) -> int:
    task = services.tasks.get(args.id)
    label = (
        f"{task.id} ({task.name or task.desired_action[:40]}, {task.current_version or 0} versions)"
    )
    if not args.yes:
        if not sys.stdin.isatty():
            err.write(f"error: add --yes to delete task {label} without a question\n")
            return 2
        err.write(f"Delete task {label} with its versions and runs? [y/N] ")
        err.flush()
        if sys.stdin.readline().strip().lower() not in ("y", "yes"):
            err.write("not deleted\n")
            return 1
    services.housekeeping.delete(task.id)
    out.write(f"deleted {task.id}\n")
    return 0
