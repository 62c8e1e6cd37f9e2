"""The one composition root: settings in, wired services out. Tests pass fakes as overrides.

It imports only downward; the roles (``bot.roles``) call it, and nothing else imports it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Literal

from sqlalchemy import Engine

from bot.config import Settings
from bot.prog import hint
from bot.services.audit import AuditService
from bot.services.codegen import CodeGenerator, OpenAICodeGenerator
from bot.services.container import Services
from bot.services.deliveries import DeliveryService
from bot.services.events import RunSignal
from bot.services.fairness import RunLimits
from bot.services.generation import MAX_REPAIR_ROUNDS, Generation
from bot.services.housekeeping import TaskHousekeeping, generation_deadline
from bot.services.personal import CachedMembers, Members, NoMembers, PersonalAccess
from bot.services.pins import PinService
from bot.services.reach import ReachService
from bot.services.run_errors import RunErrorSharing
from bot.services.runs import RunQueue, RunRecords, RunService
from bot.services.schedules import ScheduleService
from bot.services.stops import StopService
from bot.services.tasks import TaskService
from bot.services.tokens import TokenService
from bot.services.usage import Budgets, Prices, UsageService
from storage import migrate
from storage.db import make_engine, make_session_factory
from storage.uow import UnitOfWorkFactory

if TYPE_CHECKING:
    from celery import Celery

    from bot.services.checks import CheckRunner, Execute
    from bot.worker.executor import RunExecutor
    from bot.worker.local import LocalPool
    from bot.worker.relay import RedisRelay
    from bot.worker.sandbox import Sandbox

__all__ = ["Runner", "Services", "build_generator", "build_services"]

logger = logging.getLogger(__name__)

Runner = Literal["none", "local", "celery"]


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
    celery_app: Celery | None = None,
    worker: bool = False,
    queue: RunQueue | None = None,
    execute: Execute | None = None,
    members: Members | None = None,
    signal: RunSignal | None = None,
) -> Services:
    """Wire everything, once: nothing is assigned after construction. ``runner``: "local"
    starts the sandbox and an in-process pool, "celery" sends runs to Celery workers (and
    hears them end over Redis), "none" records runs without executing them, or hands them to
    ``queue`` (the web role's pipe to the flow process, or its Celery queue). ``worker``: this
    process executes runs for Celery (``bot.roles.worker``) and publishes their changes.
    ``execute`` runs the checks' harness elsewhere (the web role: in the flow process).
    ``signal`` is given when changes made elsewhere are told to it (the web role: the flow
    process's, over its pipe)."""
    engine = engine or make_engine(settings.database_url)
    if check_schema:
        migrate.prepare(engine, migrate_command=hint("migrate"))
    uow = UnitOfWorkFactory(make_session_factory(engine))
    generator = generator or build_generator(settings)
    from bot.services.checks import SandboxChecker
    from bot.worker.executor import SandboxHolder, check_execute

    sandboxes = SandboxHolder(settings, sandbox=sandbox)
    execute = execute or check_execute(sandboxes)
    generation = Generation(
        generator,
        packages=settings.sandbox_packages,
        max_code_bytes=settings.code_max_bytes,
        checker=checker or SandboxChecker(execute),
    )
    timing = {"clock": clock} if clock else {}
    usage = UsageService(
        uow=uow,
        prices=Prices(settings.model_prices),
        budgets=Budgets.of(settings),
        model=generator.model_name,
        **timing,
    )
    tasks = TaskService(
        uow=uow,
        generation=generation,
        usage=usage,
        run_errors=RunErrorSharing(settings.run_errors_to_model),
        **timing,
    )
    signal = signal or RunSignal()
    clock_now = {"clock": clock} if clock else {}

    def records() -> RunRecords:
        return RunRecords(
            uow=uow,
            packages=settings.sandbox_packages,
            max_code_bytes=settings.code_max_bytes,
            wall_seconds=settings.sandbox_wall_seconds,
            signal=signal,
            usage=usage,
            keep_inputs=settings.retain_input_days > 0,
            **clock_now,
        )

    executor: RunExecutor | None = None
    pool: LocalPool | None = None
    relay: RedisRelay | None = None
    if queue is not None and runner != "none":
        raise ValueError('a queue is given only with runner="none"')
    if runner == "local" or worker:
        from bot.worker.executor import RunExecutor

        executor = RunExecutor(records(), sandboxes.get())
    if runner == "local":
        from bot.worker.local import LocalPool

        assert executor is not None
        pool = queue = LocalPool(executor, concurrency=settings.worker_concurrency)
    elif runner == "celery":
        from bot.worker.celery_app import CeleryQueue, make_celery

        queue = CeleryQueue(celery_app or make_celery(settings))
        relay = _relay(settings, signal, publish=worker)
    runs = RunService(
        tasks=tasks,
        queue=queue,
        max_input_bytes=settings.max_input_bytes,
        uow=uow,
        packages=settings.sandbox_packages,
        max_code_bytes=settings.code_max_bytes,
        wall_seconds=settings.sandbox_wall_seconds,
        signal=signal,
        usage=usage,
        limits=RunLimits(settings.fair_user_queued_runs, settings.fair_channel_queued_runs),
        keep_inputs=settings.retain_input_days > 0,
        **clock_now,
    )
    tokens, audit, personal = _token_services(
        settings, engine=engine, uow=uow, tasks=tasks, members=members
    )
    return Services(
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
        signal=signal,
        checks=execute,
        pins=PinService(uow=uow),  # issue 18
        schedules=ScheduleService(uow=uow, **clock_now),  # issue 18
        tokens=tokens,
        audit=audit,
        personal=personal,
        stops=StopService(uow=uow, runs=runs, signal=signal, admins=settings.admin_users),
        reach=ReachService(uow=uow),
        executor=executor,
        pool=pool,
        sandboxes=sandboxes,
        relay=relay,
    )


def _token_services(
    settings: Settings,
    *,
    engine: Engine,
    uow: UnitOfWorkFactory,
    tasks: TaskService,
    members: Members | None,
) -> tuple[TokenService, AuditService, PersonalAccess]:
    """Personal tokens, their audit, and who may see what with one (issue 19)."""
    if members is None:
        multi = bool(settings.slack_client_id and settings.slack_client_secret)
        members = (
            _SlackMembersOnFirstUse(settings, engine)
            if settings.slack_bot_token or multi
            else NoMembers()
        )
    return (
        TokenService(
            uow=uow,
            admins=settings.admin_users,
            default_days=settings.token_days,
            operator_token=settings.api_token,
        ),
        AuditService(uow=uow, retention_days=settings.audit_retention_days),
        PersonalAccess(
            tasks=tasks,
            members=CachedMembers(members, ttl=settings.members_cache_seconds),
            allowed_channels=settings.allowed_channels,
            allowed_users=settings.allowed_users,
        ),
    )


class _SlackMembersOnFirstUse:
    """Slack's channel members, its client built when a personal token first needs it: the
    worker and the terminal, which never do, do not load the Slack edge."""

    def __init__(self, settings: Settings, engine: Engine) -> None:
        self._settings = settings
        self._engine = engine
        self._inner: Members | None = None

    def members(
        self, *, team_id: str, enterprise_id: str | None, channel_id: str
    ) -> frozenset[str] | None:
        if self._inner is None:
            from bot.slack.members import slack_members

            settings, installations = self._settings, None
            if settings.slack_client_id and settings.slack_client_secret:
                from slack_sdk.oauth.installation_store.sqlalchemy import (
                    SQLAlchemyInstallationStore,
                )

                installations = SQLAlchemyInstallationStore(
                    client_id=settings.slack_client_id, engine=self._engine
                )
            self._inner = slack_members(
                bot_token=settings.slack_bot_token,
                api_url=settings.slack_api_url,
                installations=installations,
            )
        return self._inner.members(
            team_id=team_id, enterprise_id=enterprise_id, channel_id=channel_id
        )


def _relay(settings: Settings, signal: RunSignal, *, publish: bool) -> RedisRelay | None:
    """Run changes over the broker's Redis: a worker publishes its own, the others listen."""
    if not settings.celery_broker_url.startswith(("redis://", "rediss://", "unix://")):
        logger.info("the broker is not Redis: run changes from workers are found by sweeping")
        return None
    from bot.worker.relay import RedisRelay

    relay = RedisRelay(settings.celery_broker_url, signal)
    if publish:
        signal.relay(relay.publish)
    else:
        relay.start()
    return relay
