"""The one composition root: settings in, wired services out. Tests pass fakes as overrides."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine

from bot.config import Settings
from bot.prog import hint
from bot.services.codegen import CodeGenerator, OpenAICodeGenerator
from bot.services.deliveries import DeliveryService
from bot.services.generation import MAX_REPAIR_ROUNDS, Generation
from bot.services.housekeeping import TaskHousekeeping, generation_deadline
from bot.services.runs import RunService
from bot.services.tasks import TaskService
from bot.services.usage import Budgets, Prices, UsageService
from storage import migrate
from storage.db import is_sqlite, make_engine, make_session_factory
from storage.uow import UnitOfWorkFactory

if TYPE_CHECKING:
    from bot.services.checks import CheckRunner
    from bot.worker.executor import RunExecutor, SandboxHolder
    from bot.worker.local import LocalPool
    from bot.worker.sandbox import Sandbox

logger = logging.getLogger(__name__)

Runner = Literal["none", "local", "celery"]


class SchemaOutOfDate(RuntimeError):
    """The database needs ``python -m bot migrate``."""


@dataclass
class Services:
    settings: Settings
    engine: Engine
    uow: UnitOfWorkFactory
    generator: CodeGenerator
    tasks: TaskService
    runs: RunService
    deliveries: DeliveryService
    housekeeping: TaskHousekeeping
    usage: UsageService
    executor: RunExecutor | None = None
    pool: LocalPool | None = None
    sandboxes: SandboxHolder | None = None

    def close(self) -> None:
        if self.pool is not None:
            self.pool.close()
        if self.sandboxes is not None:
            self.sandboxes.close()
        self.engine.dispose()


def prepare_schema(engine: Engine) -> None:
    """SQLite (one machine) upgrades itself; PostgreSQL is migrated by the release step."""
    if is_sqlite(str(engine.url)):
        if not migrate.is_current(engine):
            logger.info("upgrading the SQLite schema to %s", migrate.head_revision(engine))
            migrate.upgrade(engine)
        return
    if not migrate.is_current(engine):
        raise SchemaOutOfDate(
            f"The database schema is not up to date: run `{hint('migrate')}` "
            "(the Procfile's release step does this on deploy)."
        )


def build_generator(settings: Settings) -> CodeGenerator:
    return OpenAICodeGenerator(
        api_key=settings.openai_api_key,
        base_url=settings.openai_base_url,
        model=settings.openai_model,
        timeout=settings.openai_timeout,
        max_retries=settings.openai_max_retries,
        response_format="json_object"
        if settings.openai_response_format == "json_object"
        else "json_schema",
    )


def build_services(
    settings: Settings,
    *,
    engine: Engine | None = None,
    generator: CodeGenerator | None = None,
    clock: Callable[[], datetime] | None = None,
    check_schema: bool = True,
    runner: Runner = "none",
    sandbox: Sandbox | None = None,
    checker: CheckRunner | None = None,
) -> Services:
    """Wire everything. ``runner``: "local" starts the sandbox and an in-process pool,
    "celery" sends runs to Celery workers, "none" records runs without executing them."""
    engine = engine or make_engine(settings.database_url)
    if check_schema:
        prepare_schema(engine)
    uow = UnitOfWorkFactory(make_session_factory(engine))
    generator = generator or build_generator(settings)
    from bot.services.checks import SandboxChecker
    from bot.worker.executor import SandboxHolder, check_execute

    sandboxes = SandboxHolder(settings, sandbox=sandbox)
    generation = Generation(
        generator,
        packages=settings.sandbox_packages,
        max_code_bytes=settings.code_max_bytes,
        checker=checker or SandboxChecker(check_execute(sandboxes)),
    )
    timing = {"clock": clock} if clock else {}
    usage = UsageService(
        uow=uow,
        prices=Prices(settings.model_prices),
        budgets=Budgets.of(settings),
        model=generator.model_name,
        **timing,
    )
    tasks = TaskService(uow=uow, generation=generation, usage=usage, **timing)
    runs = RunService(
        usage=usage,
        uow=uow,
        tasks=tasks,
        queue=None,
        packages=settings.sandbox_packages,
        max_code_bytes=settings.code_max_bytes,
        max_input_bytes=settings.sandbox_max_input_mb * 2**20,
        wall_seconds=settings.sandbox_wall_seconds,
        **timing,
    )
    services = Services(
        settings=settings,
        engine=engine,
        uow=uow,
        generator=generator,
        tasks=tasks,
        runs=runs,
        deliveries=DeliveryService(uow=uow),
        housekeeping=TaskHousekeeping(
            uow=uow,
            tasks=tasks,
            deadline=generation_deadline(
                model_timeout=settings.openai_timeout,
                max_retries=settings.openai_max_retries,
                rounds=1 + MAX_REPAIR_ROUNDS,
                checks_seconds=settings.sandbox_wall_seconds,
            ),
            **timing,
        ),
        usage=usage,
        sandboxes=sandboxes,
    )
    if runner == "local":
        from bot.worker.executor import RunExecutor
        from bot.worker.local import LocalPool

        services.executor = RunExecutor(runs, sandboxes.get())
        services.pool = LocalPool(services.executor, concurrency=settings.worker_concurrency)
        runs.queue = services.pool
    elif runner == "celery":
        from bot.worker.celery_app import CeleryQueue, make_celery

        runs.queue = CeleryQueue(make_celery(settings))
    return services
