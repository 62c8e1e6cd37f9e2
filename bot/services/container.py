"""The wired services as the edges see them: built once by the composition root
(``bot.composition``), frozen, passed in. Worker parts are typed by what the edges use, so
this layer imports nothing from ``bot.worker``."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Engine

from bot.config import Settings
from bot.services.audit import AuditService
from bot.services.checks import Execute
from bot.services.codegen import CodeGenerator
from bot.services.deliveries import DeliveryService
from bot.services.events import RunSignal
from bot.services.housekeeping import TaskHousekeeping
from bot.services.personal import PersonalAccess
from bot.services.pins import PinService
from bot.services.reach import ReachService
from bot.services.runs import RunRecords, RunService
from bot.services.schedules import ScheduleService
from bot.services.stops import StopService
from bot.services.tasks import TaskService
from bot.services.tokens import TokenService
from bot.services.usage import UsageService
from storage.uow import UnitOfWorkFactory


class Closeable(Protocol):
    def close(self) -> None: ...


class Executor(Protocol):
    """Claims, executes and records one run in this process."""

    def execute(self, run_id: str) -> None: ...

    def execute_next(self, among: Collection[str] | None = None) -> str | None: ...


class RunPool(Protocol):
    """The in-process pool (``TASK_QUEUE=local``)."""

    def submit(self, run_id: str) -> None: ...

    def recover(self, runs: RunRecords) -> tuple[list[str], list[str]]: ...

    def wait_idle(self, timeout: float | None = None) -> bool: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
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
    signal: RunSignal
    checks: Execute  # runs a version's checks harness in a sandbox (this process's, or not)
    pins: PinService  # issue 18: the version unattended runs use
    schedules: ScheduleService  # issue 18
    tokens: TokenService  # personal tokens (issue 19)
    audit: AuditService
    personal: PersonalAccess
    stops: StopService
    reach: ReachService  # what a user can reach: Home tab, the shortcut's picker
    executor: Executor | None = None
    pool: RunPool | None = None
    sandboxes: Closeable | None = None
    relay: Closeable | None = None  # run changes from other processes (Redis pub/sub)

    def close(self) -> None:
        if self.relay is not None:
            self.relay.close()
        if self.pool is not None:
            self.pool.close()
        if self.sandboxes is not None:
            self.sandboxes.close()
        self.uow.close()  # a WAL scrub still pending is done now
        self.engine.dispose()
