"""Idempotency for chat deliveries: the same delivery is processed once, in any process."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from storage.uow import UnitOfWorkFactory


class DeliveryService:
    def __init__(self, *, uow: UnitOfWorkFactory) -> None:
        self._uow = uow

    def first_time(self, key: str, *, kind: str) -> bool:
        """Record ``key``; True the first time it is seen, False for every repeat."""
        with self._uow() as uow:
            fresh = uow.deliveries.record(key, kind=kind)
            uow.commit()
            return fresh

    def forget_older_than(self, age: timedelta) -> int:
        with self._uow() as uow:
            removed = uow.deliveries.forget_before(datetime.now(UTC) - age)
            uow.commit()
            return removed
