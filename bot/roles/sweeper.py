"""The minutely chores of ``serve``, in its flow process (``bot.roles.flow``), where the
services are loaded anyway: at start and then every minute, each on its own so one failing
stops no other: run data past its retention is removed (bot.services.retention), so are audit
entries past theirs, and, where no Slack flow runtime sweeps them itself (bot.slack.sweep),
generations nobody is working on any more are failed, so nothing stays ``generating`` past the
model's timeout."""

from __future__ import annotations

import logging
import threading

from bot.services.container import Services
from bot.services.retention import Retention, RetentionPolicy

logger = logging.getLogger(__name__)


class Sweeper:
    def __init__(self, services: Services, *, abandoned: bool, every: float = 60.0) -> None:
        self._services = services
        self._abandoned = abandoned
        self._every = every
        settings = services.settings
        self._retention = Retention(  # what is kept and for how long
            uow=services.uow,
            policy=RetentionPolicy(
                input_days=settings.retain_input_days,
                output_days=settings.retain_output_days,
                result_days=settings.retain_result_days,
                log_days=settings.retain_log_days,
            ),
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="sweep", daemon=True)
        self._thread.start()

    def sweep(self) -> None:
        if self._abandoned:
            try:
                failed = self._services.housekeeping.fail_abandoned()
                if failed:
                    logger.warning("%d abandoned generation(s) marked failed", failed)
            except Exception:
                logger.exception("could not sweep abandoned generations")
        try:
            removed = self._retention.apply()
            if removed.total:
                logger.info("retention removed %s", removed)
        except Exception:
            logger.exception("could not apply the retention of run data")
        try:
            purged = self._services.audit.purge()  # AUDIT_RETENTION_DAYS
            if purged:
                logger.info("%d audit entries past their retention deleted", purged)
        except Exception:
            logger.exception("could not delete old audit entries")

    def _loop(self) -> None:
        while True:
            self.sweep()
            if self._stop.wait(self._every):
                return

    def stop(self) -> None:
        self._stop.set()
