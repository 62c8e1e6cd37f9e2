"""The command line: ``python -m bot [serve | worker | migrate | doctor | task ... | config]``."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import OperationalError

from bot.composition import SchemaOutOfDate, build_services
from bot.config import ConfigError, Settings
from bot.env_files import current_env, example_env, load_settings
from bot.prog import bot_command, hint
from bot.progress import Progress, interruptibly, wanted
from bot.services.container import Services
from bot.services.errors import InvalidInput, ServiceError
from bot.services.views import TaskDetail, checks_listing
from bot.worker.sandbox import SandboxUnavailable
from storage.errors import StorageUnavailable
from storage.kinds import RequestKind, TaskType, VersionState
from storage.private import restrict_umask

logger = logging.getLogger("bot")


LIST_HEADER = (
    f"{'ID':<36}  {'VER':>4}  {'STATE':<10}  {'LAST RUN':<9}  {'CREATED (UTC)':<16}  NAME\n"
)
PROGRESS_HELP = "show progress on stderr even when it is not a terminal"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=bot_command(),
        description="Taskbot: plain-language requests turned into small Python programs.",
    )
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="serve Slack, the HTTP API and /healthz (the default)")
    sub.add_parser("worker", help="run tasks from the Celery queue (TASK_QUEUE=celery)")
    sub.add_parser("doctor", help="print the isolation this host offers the sandbox")
    migrate = sub.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--revision", default="head", help="target revision (default: head)")
    migrate.add_argument("--downgrade", action="store_true", help="downgrade to --revision")
    config = sub.add_parser("config", help="print the settings in use, or the example .env")
    config.add_argument("--example", action="store_true", help="print .example.env")

    task_parser = sub.add_parser("task", help="work with tasks from the terminal")
    task_parser.add_argument(
        "--token", help="a personal token (or TASKBOT_TOKEN): act as its owner on --server"
    )
    task_parser.add_argument("--server", help="the server's URL for --token (or TASKBOT_URL)")
    task = task_parser.add_subparsers(dest="action", required=True)
    create = task.add_parser("create", help="generate a new task; prints its id and code")
    create.add_argument("description")
    create.add_argument(
        "--type",
        dest="task_type",
        default=TaskType.PASSTHROUGH.value,
        choices=[t.value for t in TaskType],
    )
    create.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    refine = task.add_parser("refine", help="generate the next version from your feedback")
    refine.add_argument("id")
    refine.add_argument("feedback")
    refine.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    show = task.add_parser("show", help="a version's metadata and code")
    show.add_argument("id")
    show.add_argument("--version", type=int)
    run = task.add_parser("run", help="run a task; prints the result on standard output")
    run.add_argument("id")
    run.add_argument("--input", type=Path, help="the input file (passthrough tasks)")
    run.add_argument("--text", help="text to use as the input file input.txt")
    run.add_argument("--version", type=int)
    run.add_argument("--output-dir", type=Path, help="save the files the run wrote here")
    run.add_argument("--progress", action="store_true", help=PROGRESS_HELP)
    task.add_parser("list", help="recent tasks")
    pin = task.add_parser("pin", help="scheduled, workflow and MCP runs use this version")
    pin.add_argument("id")
    pin.add_argument("version", help="the version, e.g. 2 or v2")
    task.add_parser("unpin", help="unattended runs use the current version again").add_argument(
        "id"
    )
    delete = task.add_parser("delete", help="delete a task with its versions and runs")
    delete.add_argument("id")
    delete.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    usage = task.add_parser("usage", help="what was spent, by user and task, and the budgets")
    usage.add_argument("--days", type=int, default=1, help="days back, today included (1)")
    export = task.add_parser("export", help="write user_tasks/<uuid>/function.py and metadata.json")
    export.add_argument("id")
    export.add_argument("--version", type=int)
    export.add_argument("--dir", default="user_tasks", type=Path)
    export.add_argument(
        "--force", action="store_true", help="replace an earlier export of another version"
    )
    return parser


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


def _task_command(args: argparse.Namespace, services: Services, out: TextIO, err: TextIO) -> int:
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


def _serve(settings: Settings, err: TextIO) -> int:
    missing = settings.missing_for_slack()
    if not settings.openai_api_key and "api.openai.com" in settings.openai_base_url:
        missing.append(
            "OPENAI_API_KEY: the model server's API key "
            "(or OPENAI_BASE_URL for another OpenAI-compatible server)"
        )
    if missing:
        err.write("Taskbot cannot serve Slack yet. Set these in .env (see .example.env):\n")
        for line in missing:
            err.write(f"  - {line}\n")
        err.write(
            "Create the Slack app from manifest.yaml at https://api.slack.com/apps, "
            "install it, then copy the tokens.\n"
        )
        return 2
    from bot.roles.web import serve

    return serve(settings)


def main(
    argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    restrict_umask()  # whatever the app writes is its user's only (storage.private)
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
    except ConfigError as exc:
        err.write(f"error: {exc}\n")
        return 2
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    for noisy in ("httpx", "httpx2", "openai", "httpcore", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    command = args.command or "serve"
    if command == "config":
        in_use = {**os.environ, "DATABASE_URL": settings.database_url}
        out.write(example_env() if args.example else current_env(in_use))
        return 0
    try:
        if command == "serve":
            return _serve(settings, err)
        if command == "migrate":
            from storage import migrate
            from storage.db import make_engine

            engine = make_engine(settings.database_url)
            try:
                if args.downgrade:
                    migrate.downgrade(engine, args.revision)
                else:
                    migrate.upgrade(engine, args.revision)
                out.write(f"database at revision {migrate.current_revision(engine) or 'base'}\n")
            finally:
                engine.dispose()
            return 0
        if command == "doctor":
            from bot.roles.cli_run import doctor

            return doctor(settings, out)
        if command == "worker":
            from bot.roles.worker import run_worker

            return run_worker(settings)
        from bot.roles import cli_remote  # not for serve: urllib and the terminal's tables

        if command == "task" and cli_remote.wanted(args):
            return cli_remote.run_remote(args, out, err)
        runs_here = command == "task" and args.action == "run"
        services = build_services(
            settings,
            runner=("celery" if settings.task_queue == "celery" else "local")
            if runs_here
            else "none",
        )
        try:
            return _task_command(args, services, out, err)
        finally:
            services.close()
    except (ServiceError, StorageUnavailable) as exc:
        err.write(f"error: {exc}\n")
        return 1
    except (SchemaOutOfDate, SandboxUnavailable) as exc:
        err.write(f"error: {exc}\n")
        return 2
    except OperationalError as exc:
        logger.debug("database error", exc_info=True)
        err.write(f"error: the database is unreachable ({str(exc.orig).strip().splitlines()[0]})\n")
        return 1
