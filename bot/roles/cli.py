"""The command line: ``python -m bot [serve | worker | migrate | doctor | task ... | config]``."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TextIO

from sqlalchemy.exc import OperationalError

from bot.config import ConfigError, Settings
from bot.env_files import current_env, example_env, load_settings
from bot.prog import bot_command
from bot.services.errors import ServiceError
from bot.worker.sandbox import SandboxUnavailable
from storage.errors import SchemaOutOfDate, StorageUnavailable
from storage.kinds import TaskType
from storage.private import restrict_umask

logger = logging.getLogger("bot")


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
        # Not for serve: urllib, the terminal's tables, and the services (the ORM) it builds
        # on first use.
        from bot.composition import build_services
        from bot.roles import cli_remote
        from bot.roles.cli_tasks import task_command

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
            return task_command(args, services, out, err)
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
