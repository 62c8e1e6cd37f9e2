"""The command line: ``python -m bot [serve | worker | migrate | doctor | task ... | config]``."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import OperationalError

from bot.composition import SchemaOutOfDate, Services, build_services
from bot.config import ConfigError, Settings, example_env, load_settings
from bot.services.errors import ServiceError
from bot.services.views import TaskDetail, checks_listing
from bot.worker.sandbox import SandboxUnavailable
from storage.errors import StorageUnavailable

logger = logging.getLogger("bot")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bot",
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

    task = sub.add_parser("task", help="work with tasks from the terminal").add_subparsers(
        dest="action", required=True
    )
    create = task.add_parser("create", help="generate a new task; prints its id and code")
    create.add_argument("description")
    create.add_argument(
        "--type", dest="task_type", default="passthrough", choices=["passthrough", "generator"]
    )
    refine = task.add_parser("refine", help="generate the next version from your feedback")
    refine.add_argument("id")
    refine.add_argument("feedback")
    show = task.add_parser("show", help="a version's metadata and code")
    show.add_argument("id")
    show.add_argument("--version", type=int)
    run = task.add_parser("run", help="run a task; prints the result on standard output")
    run.add_argument("id")
    run.add_argument("--input", type=Path, help="the input file (passthrough tasks)")
    run.add_argument("--text", help="text to use as the input file input.txt")
    run.add_argument("--version", type=int)
    run.add_argument("--output-dir", type=Path, help="save the files the run wrote here")
    task.add_parser("list", help="recent tasks")
    usage = task.add_parser("usage", help="what was spent, by user and task, and the budgets")
    usage.add_argument("--days", type=int, default=1, help="days back, today included (1)")
    export = task.add_parser("export", help="write user_tasks/<uuid>/function.py and metadata.json")
    export.add_argument("id")
    export.add_argument("--version", type=int)
    export.add_argument("--dir", default="user_tasks", type=Path)
    return parser


def print_detail(detail: TaskDetail, out: TextIO, *, diff: str | None = None) -> None:
    task, version = detail.task, detail.version
    out.write(f"{task.id}\n")
    out.write(
        f"# {version.metadata.get('title', task.name)} (v{version.number}, {task.task_type})\n"
    )
    out.write(json.dumps(dict(version.metadata), indent=2, ensure_ascii=False) + "\n")
    state = " (draft: not current)" if version.state == "draft" else ""
    out.write(f"# checks: {version.check_summary}{state}\n")
    out.write(f"# cost: {version.cost_line} (prompt {version.prompt_version})\n")
    for replaced in version.replaced_checks:
        out.write(f"#   replaced {replaced.get('name')}: {replaced.get('reason')}\n")
    if version.change_summary:
        out.write(f"\n# changed: {version.change_summary}\n")
    if diff:
        out.write("\n" + diff + ("" if diff.endswith("\n") else "\n"))
    out.write(f"\n# function.py\n{version.code}")
    if not version.code.endswith("\n"):
        out.write("\n")


def _task_command(args: argparse.Namespace, services: Services, out: TextIO) -> int:
    tasks = services.tasks
    if args.action == "create":
        detail = tasks.create(
            description=args.description,
            task_type=args.task_type,
            requested_by="cli",
            source="cli",
        )
        print_detail(detail, out)
    elif args.action == "refine":
        refinement = tasks.refine(args.id, feedback=args.feedback, requested_by="cli")
        print_detail(TaskDetail(refinement.task, refinement.version), out, diff=refinement.diff)
    elif args.action == "show":
        detail = tasks.show(args.id, version=args.version)
        print_detail(detail, out)
        if detail.version.checks:
            out.write(f"\n# checks\n{checks_listing(detail.version)}\n")
    elif args.action == "run":
        from bot.cli_run import run_task

        return run_task(args, services, out)
    elif args.action == "list":
        summaries = tasks.list(limit=50)
        if not summaries:
            out.write('No tasks yet. Create one: python -m bot task create "..."\n')
        for s in summaries:
            version = f"v{s.task.current_version}" if s.task.current_version else "-"
            out.write(
                f"{s.task.id}  {version:>4}  {s.task.state:<10}  {s.last_run_status or '-':<9}  "
                f"{s.task.name or s.task.desired_action[:40]}\n"
            )
    elif args.action == "usage":
        from bot.cli_usage import print_usage

        print_usage(services.usage.report(team_id="", user_id="cli", days=args.days), out)
    elif args.action == "export":
        path = tasks.export(args.id, version=args.version, directory=args.dir)
        out.write(f"{path / 'function.py'}\n{path / 'metadata.json'}\n")
    return 0


def _serve(settings: Settings, err: TextIO) -> int:
    missing = settings.missing_for_slack()
    if missing:
        err.write("Taskbot cannot serve Slack yet. Set these in .env (see .example.env):\n")
        for line in missing:
            err.write(f"  - {line}\n")
        err.write(
            "Create the Slack app from manifest.yaml at https://api.slack.com/apps, "
            "install it, then copy the tokens.\n"
        )
        return 2
    from bot.server import serve

    return serve(settings)


def main(
    argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
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
        out.write(
            example_env()
            if args.example
            else "".join(
                f"{k}={v!r}\n"
                for k, v in vars(settings).items()
                if "token" not in k and "secret" not in k and "key" not in k
            )
        )
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
            from bot.cli_run import doctor

            return doctor(settings, out)
        if command == "worker":
            from bot.worker.main import run_worker

            return run_worker(settings)
        runs_here = command == "task" and args.action == "run"
        services = build_services(
            settings,
            runner=("celery" if settings.task_queue == "celery" else "local")
            if runs_here
            else "none",
        )
        try:
            return _task_command(args, services, out)
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
