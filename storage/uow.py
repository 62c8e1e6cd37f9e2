"""Unit of work: one transaction, its repositories, commit or roll back."""

from __future__ import annotations

from types import TracebackType

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from storage.errors import StorageUnavailable
from storage.private import scrub
from storage.repositories import (
    DeliveryRepository,
    RunRepository,
    TaskRepository,
    UsageRepository,
)
from storage.scrubber import WalScrubber


class UnitOfWork:
    """``with uow_factory() as uow: ...; uow.commit()``; leaving without commit rolls back."""

    tasks: TaskRepository
    runs: RunRepository
    deliveries: DeliveryRepository
    usage: UsageRepository

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self._session_factory = session_factory
        self._session: Session | None = None

    @property
    def session(self) -> Session:
        if self._session is None:
            raise RuntimeError("unit of work used outside its 'with' block")
        return self._session

    def __enter__(self) -> UnitOfWork:
        self._session = self._session_factory()
        self.tasks = TaskRepository(self._session)
        self.runs = RunRepository(self._session)
        self.deliveries = DeliveryRepository(self._session)
        self.usage = UsageRepository(self._session)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is not None:  # after a failure (perhaps the database's): roll back first
                self.session.rollback()
        except DBAPIError:
            pass  # the connection is gone; closing the session discards it
        finally:
            # Closing rolls back what was not committed and gives the write lock back: a block
            # that ended normally (a read, or a write it chose not to commit) needs no more.
            self.session.close()
            self._session = None
        if isinstance(exc, OperationalError) or (
            isinstance(exc, DBAPIError) and exc.connection_invalidated
        ):
            raise StorageUnavailable() from exc

    def commit(self) -> None:
        self.session.commit()

    def scrub(self) -> None:
        """After a commit that deleted users' data: leave no copy of it on disk (SQLite's WAL)."""
        scrub(self.session.get_bind().engine)

    def flush(self) -> None:
        self.session.flush()


class UnitOfWorkFactory:
    """Makes units of work on one session factory; the services hold one of these."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory
        self.scrubber = WalScrubber(session_factory.kw["bind"])

    def __call__(self) -> UnitOfWork:
        return UnitOfWork(self.session_factory)

    def scrub_soon(self) -> None:
        """After a commit that deleted users' data: leave no copy of it on disk, shortly and
        off the caller's path (``storage.scrubber``)."""
        self.scrubber.soon()

    def close(self) -> None:
        self.scrubber.close()
