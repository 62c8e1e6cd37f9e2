"""The task service: create, refine, read, list and export tasks and their versions."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from bot.services.checks import Check
from bot.services.errors import (
    BudgetExceeded,
    ChecksFailed,
    GenerationFailed,
    InvalidInput,
    ModelUnavailable,
    NotReady,
    ServiceError,
)
from bot.services.generation import (
    Generated,
    Generation,
    Tally,
    create_messages,
    refine_messages,
)
from bot.services.run_errors import RunErrorSharing, shared_error, shared_input
from bot.services.steps import GenerationStopped, Progress, Step, StepEvent, no_progress
from bot.services.task_reads import TaskReads
from bot.services.task_versions import new_version
from bot.services.usage import UsageService
from bot.services.views import (
    Refinement,
    TaskDetail,
    TaskView,
    VersionView,
    Workspace,
)
from storage.kinds import RequestKind, RunStatus, TaskState, TaskType
from storage.models import Task
from storage.uow import UnitOfWorkFactory

logger = logging.getLogger(__name__)

TASK_TYPES = tuple(t.value for t in TaskType)
MAX_DESCRIPTION = 4000
LOCAL = Workspace()


def _now() -> datetime:
    return datetime.now(UTC)


class TaskService(TaskReads):
    """Creating and refining tasks (the reads are ``TaskReads``)."""

    def __init__(
        self,
        *,
        uow: UnitOfWorkFactory,
        generation: Generation,
        usage: UsageService,
        clock: Callable[[], datetime] = _now,
        run_errors: RunErrorSharing = RunErrorSharing.SEND,
    ) -> None:
        super().__init__(uow=uow)
        self.run_errors = run_errors  # what of a failed run the model hears on a refine
        self._generation = generation
        self._clock = clock
        self._usage = usage

    def _check_budget(self, *, team_id: str, user_id: str, spent: Tally | None = None) -> None:
        pending = None if spent is None else self._usage.pending(spent)
        self._usage.check(team_id=team_id, user_id=user_id, model=True, pending=pending)

    # --- creating -------------------------------------------------------------------------

    def start(
        self,
        *,
        description: str,
        task_type: str = TaskType.PASSTHROUGH,
        requested_by: str,
        source: str,
        workspace: Workspace = LOCAL,
        channel_id: str | None = None,
        thread_ts: str | None = None,
    ) -> TaskView:
        """Store a new task (state ``generating``) before anyone is told it exists."""
        description = description.strip()
        if not description:
            raise InvalidInput("Say what the task should do, e.g. `count the lines of the file`.")
        if len(description) > MAX_DESCRIPTION:
            raise InvalidInput(f"The description is over {MAX_DESCRIPTION} characters.")
        if task_type not in TASK_TYPES:
            raise InvalidInput(f"Unknown task type {task_type!r}: use {' or '.join(TASK_TYPES)}.")
        self._check_budget(team_id=workspace.team_id, user_id=requested_by)
        now = self._clock()
        with self._uow() as uow:
            task = Task(
                id=str(uuid.uuid4()),
                team_id=workspace.team_id,
                enterprise_id=workspace.enterprise_id,
                channel_id=channel_id,
                thread_ts=thread_ts,
                creator=requested_by,
                source=source,
                desired_action=description,
                task_type=task_type,
                state=TaskState.GENERATING.value,
                created_at=now,
                updated_at=now,
            )
            uow.tasks.add(task)
            uow.commit()
            return TaskView.of(task)

    def attach_thread(self, task_id: str, *, channel_id: str, thread_ts: str) -> None:
        with self._uow() as uow:
            task = self._get(uow, task_id)
            task.channel_id, task.thread_ts = channel_id, thread_ts
            uow.commit()

    def abandon(self, task_id: str, *, reason: str) -> None:
        """A task that could not be announced: keep it, marked failed with the reason."""
        with self._uow() as uow:
            task = self._get(uow, task_id)
            task.state, task.state_detail = TaskState.FAILED.value, reason
            task.updated_at = self._clock()
            uow.commit()

    def generate_first(self, task_id: str, *, progress: Progress = no_progress) -> TaskDetail:
        """Generate and store version 1 of a task made by ``start``; ``progress`` hears each
        step (and may stop it: ``bot.services.steps``)."""
        with self._uow() as uow:
            task = TaskView.of(self._get(uow, task_id))
        if task.current_version is not None:
            with self._uow() as uow:
                version = uow.tasks.version(task.id, task.current_version)
                assert version is not None
                return TaskDetail(task, VersionView.of(version))
        try:
            self._check_budget(team_id=task.team_id, user_id=task.creator)
        except BudgetExceeded as exc:
            self.abandon(task.id, reason=str(exc))
            raise
        messages = create_messages(
            description=task.desired_action,
            task_type=task.task_type,
            packages=self._generation.packages,
        )
        generated = self._generate(task, messages, requested_by=task.creator, progress=progress)
        return self._store_version(
            task.id,
            generated,
            request_kind=RequestKind.CREATE,
            request_text=task.desired_action,
            requested_by=task.creator,
            expected_previous=0,
        )

    def create(
        self,
        *,
        description: str,
        task_type: str = TaskType.PASSTHROUGH,
        requested_by: str,
        source: str,
        workspace: Workspace = LOCAL,
        channel_id: str | None = None,
        thread_ts: str | None = None,
    ) -> TaskDetail:
        task = self.start(
            description=description,
            task_type=task_type,
            requested_by=requested_by,
            source=source,
            workspace=workspace,
            channel_id=channel_id,
            thread_ts=thread_ts,
        )
        return self.generate_first(task.id)

    # --- refining -------------------------------------------------------------------------

    def refine(
        self,
        ref: str,
        *,
        feedback: str,
        requested_by: str,
        team_id: str | None = None,
        progress: Progress = no_progress,
    ) -> Refinement:
        feedback = feedback.strip()
        if not feedback:
            raise InvalidInput("Say what should change, e.g. `also count empty lines`.")
        if len(feedback) > MAX_DESCRIPTION:
            raise InvalidInput(f"The request is over {MAX_DESCRIPTION} characters.")
        with self._uow() as uow:
            task = self._resolve(uow, ref, team_id=team_id)
            if task.current_version is None:
                raise NotReady(f"Task {task.id[:8]} has no working version to refine yet.")
            current = uow.tasks.version(task.id, task.current_version)
            assert current is not None
            previous = VersionView.of(current)
            latest = uow.tasks.latest_version_number(task.id)
            view = TaskView.of(task)
            self._check_budget(team_id=task.team_id, user_id=requested_by)
            last_run = uow.runs.latest_for_task(task.id)
            last_error = None
            input_file = shared_input(
                last_run.input_profile if last_run is not None else None, self.run_errors
            )
            failed = (RunStatus.FAILED, RunStatus.TIMED_OUT, RunStatus.KILLED)
            if last_run is not None and RunStatus(last_run.status) in failed:
                last_error = shared_error(
                    status=last_run.status,
                    error_type=last_run.error_type or last_run.killed_reason,
                    message=last_run.error_message,
                    tail=last_run.traceback_tail,
                    sharing=self.run_errors,
                )
        messages = refine_messages(
            description=view.desired_action,
            task_type=view.task_type,
            packages=self._generation.packages,
            previous_number=previous.number,
            previous_code=previous.code,
            previous_metadata=previous.metadata,
            feedback=feedback,
            last_error=last_error,
            previous_checks=list(previous.checks),
            input_file=input_file,
        )
        kept = previous.checks
        generated = self._generate(
            view,
            messages,
            requested_by=requested_by,
            keep_state=True,
            previous_checks=kept,
            progress=progress,
        )
        detail = self._store_version(
            view.id,
            generated,
            request_kind=RequestKind.REFINE,
            request_text=feedback,
            requested_by=requested_by,
            expected_previous=latest,
        )
        import difflib  # on a refine only (the web process hands refines on)

        diff = "".join(
            difflib.unified_diff(
                previous.code.splitlines(keepends=True),
                detail.version.code.splitlines(keepends=True),
                fromfile=f"v{previous.number}/function.py",
                tofile=f"v{detail.version.number}/function.py",
            )
        )
        return Refinement(detail.task, detail.version, previous, diff)

    # --- internals ------------------------------------------------------------------------

    def _generate(
        self,
        task: TaskView,
        messages: Sequence[Any],
        *,
        requested_by: str,
        keep_state: bool = False,
        previous_checks: Sequence[Check] = (),
        progress: Progress = no_progress,
    ) -> Generated:
        tally = Tally()
        try:
            progress(StepEvent(Step.UNDERSTANDING, "reading the request"))
            generated = self._generation.run(
                messages,
                previous_checks=previous_checks,
                tally=tally,
                before_repair=lambda: self._check_budget(
                    team_id=task.team_id, user_id=requested_by, spent=tally
                ),
                progress=progress,
            )
            progress(StepEvent(Step.STORING, "storing the version"))
            return generated
        except (GenerationFailed, ModelUnavailable, BudgetExceeded, GenerationStopped) as exc:
            with self._uow() as uow:
                uow.usage.add(
                    self._usage.generation_event(
                        task, requested_by, spent=tally, number=None, outcome="failed"
                    )
                )
                if not keep_state:
                    row = self._get(uow, task.id)
                    row.state, row.state_detail = TaskState.FAILED.value, str(exc)
                    row.updated_at = self._clock()
                uow.commit()
            raise

    def _discarded(self, task_id: str, requested_by: str, *, generated: Generated) -> None:
        """A generation whose version lost a race: nothing stored, but it was spent."""
        with self._uow() as uow:
            task = TaskView.of(self._get(uow, task_id))
            uow.usage.add(
                self._usage.generation_event(
                    task, requested_by, spent=generated.spent, number=None, outcome="discarded"
                )
            )
            uow.commit()

    def _store_version(
        self,
        task_id: str,
        generated: Generated,
        *,
        request_kind: RequestKind,
        request_text: str,
        requested_by: str,
        expected_previous: int,
    ) -> TaskDetail:
        now = self._clock()
        with self._uow() as uow:
            task = self._get(uow, task_id)
            if uow.tasks.latest_version_number(task_id) != expected_previous:
                self._discarded(task_id, requested_by, generated=generated)
                raise InvalidInput(
                    "Another change to this task landed first; look at the new version and "
                    "ask again."
                )
            number = expected_previous + 1
            version = new_version(
                task_id,
                number,
                generated,
                task_type=task.task_type,
                request_kind=request_kind,
                request_text=request_text,
                requested_by=requested_by,
                at=now,
                cost_usd=self._usage.cost(generated.spent),
            )
            uow.tasks.add_version(version)
            uow.usage.add(
                self._usage.generation_event(
                    TaskView.of(task),
                    requested_by,
                    spent=generated.spent,
                    number=number,
                    outcome=version.state,
                )
            )
            draft_reason = None
            if generated.checks_passed:
                task.current_version = number
                task.name = generated.name
                task.state, task.state_detail = TaskState.READY.value, None
            else:
                failures = "; ".join(
                    f"{r.name}: {r.error}" for r in generated.check_results if not r.ok
                )
                draft_reason = (
                    f"v{number} was kept as a draft, not made current: its checks still failed "
                    f"after {generated.model_requests} tries ({failures})"
                )
                if task.current_version is None:
                    task.name = generated.name
                    task.state, task.state_detail = TaskState.FAILED.value, draft_reason
            task.updated_at = now
            try:
                uow.commit()
            except IntegrityError:
                logger.warning("version %s of task %s was stored concurrently", number, task_id)
                self._discarded(task_id, requested_by, generated=generated)
                raise InvalidInput(
                    "Another change to this task landed first; look at the new version and "
                    "ask again."
                ) from None
            if draft_reason is not None:
                raise ChecksFailed(draft_reason, version=number)
            return TaskDetail(TaskView.of(task), VersionView.of(version))


__all__ = ["TASK_TYPES", "ServiceError", "TaskService"]
