"""What a principal may see and run outside Slack: exactly what that user could in Slack.

A person sees their workspace's tasks in channels they belong to (Slack says who is in a
channel; the answer is cached briefly) and the tasks they created; ``ALLOWED_USERS`` and
``ALLOWED_CHANNELS`` apply. A task they may not see is answered as if it did not exist, so a
token never learns whether an id exists elsewhere. The operator (``API_TOKEN``) keeps the
local workspace, as before."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import replace
from typing import Protocol

from bot.services.errors import AmbiguousId, NotAllowed, NotFound, ServiceError
from bot.services.principal import Principal
from bot.services.tasks import TaskService
from bot.services.usage import UsageReport
from bot.services.views import TaskSummary, TaskView

logger = logging.getLogger(__name__)

SCAN = 500  # recent tasks of the workspace looked at when listing what a person may see


class Members(Protocol):
    """Who is in a channel, as Slack says (``conversations.members``); ``None`` when Slack
    could not be asked just now (nothing is cached then)."""

    def members(
        self, *, team_id: str, enterprise_id: str | None, channel_id: str
    ) -> frozenset[str] | None: ...


class NoMembers:
    """No Slack configured: nobody is in any channel (people see only what they created)."""

    def members(
        self, *, team_id: str, enterprise_id: str | None, channel_id: str
    ) -> frozenset[str] | None:
        return frozenset()


class CachedMembers:
    """Slack's answer per channel, kept ``ttl`` seconds."""

    def __init__(
        self, inner: Members, *, ttl: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._inner = inner
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], tuple[float, frozenset[str]]] = {}

    def members(
        self, *, team_id: str, enterprise_id: str | None, channel_id: str
    ) -> frozenset[str] | None:
        key = (team_id, channel_id)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and now - hit[0] < self._ttl:
                return hit[1]
        found = self._inner.members(
            team_id=team_id, enterprise_id=enterprise_id, channel_id=channel_id
        )
        if found is not None and self._ttl > 0:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[key] = (now, found)
        return found


class PersonalAccess:
    def __init__(
        self,
        *,
        tasks: TaskService,
        members: Members,
        allowed_channels: Collection[str] = (),
        allowed_users: Collection[str] = (),
    ) -> None:
        self._tasks = tasks
        self._members = members
        self._allowed_channels = frozenset(allowed_channels)
        self._allowed_users = frozenset(allowed_users)

    def check_person(self, principal: Principal) -> None:
        """ALLOWED_USERS applies to a token as to the person in Slack."""
        if principal.is_operator:
            return
        if self._allowed_users and principal.user_id not in self._allowed_users:
            raise NotAllowed("You are not on this Taskbot's list of users. Ask its operator.")

    def can_see(self, principal: Principal, task: TaskView) -> bool:
        if principal.is_operator:
            return task.team_id == principal.team_id
        if task.team_id != principal.team_id:
            return False
        if self._allowed_channels and task.channel_id not in self._allowed_channels:
            return task.creator == principal.user_id and task.channel_id is None
        if task.creator == principal.user_id:
            return True
        if task.channel_id is None:
            return False
        found = self._members.members(
            team_id=task.team_id, enterprise_id=task.enterprise_id, channel_id=task.channel_id
        )
        return found is not None and principal.user_id in found

    def task(self, principal: Principal, ref: str) -> TaskView:
        """The task ``ref`` names, if this principal may see it; otherwise "no task", the same
        answer as for an id that exists nowhere."""
        self.check_person(principal)
        try:
            task = self._tasks.get(ref, team_id=principal.team_id)
        except AmbiguousId:
            return self._among_visible(principal, ref)
        if not self.can_see(principal, task):
            raise NotFound(f"No task with id {ref.strip()[:40]!r}.")
        return task

    def list(self, principal: Principal, *, limit: int) -> Sequence[TaskSummary]:
        self.check_person(principal)
        if principal.is_operator:
            return self._tasks.list(team_id=principal.team_id, limit=limit)
        recent = self._tasks.list(team_id=principal.team_id, limit=SCAN)
        return [s for s in recent if self.can_see(principal, s.task)][:limit]

    def redact_usage(self, principal: Principal, report: UsageReport) -> UsageReport:
        """The workspace's spend with the tasks this person may not see left unnamed."""
        lines = []
        for line in report.by_task:
            try:
                visible = bool(line.key) and self.can_see(principal, self._tasks.get(line.key))
            except ServiceError:
                visible = False
            lines.append(line if visible else replace(line, key="", label=""))
        return replace(report, by_task=tuple(lines))

    def _among_visible(self, principal: Principal, ref: str) -> TaskView:
        prefix = ref.strip().lower()
        matches = [
            s.task
            for s in self._tasks.list(team_id=principal.team_id, limit=SCAN)
            if s.task.id.startswith(prefix) and self.can_see(principal, s.task)
        ]
        if len(matches) == 1:
            return matches[0]
        if matches:
            ids = ", ".join(t.id[:12] for t in matches[:3])
            raise AmbiguousId(f"{ref.strip()!r} matches several tasks ({ids}…): give more.")
        raise NotFound(f"No task with id {ref.strip()[:40]!r}.")
