"""The steps of a generation (create or refine), as events for whoever shows its progress.

``TaskService.generate_first`` and ``refine`` take ``progress``: called on the generating
thread at each step. It may raise ``GenerationStopped`` (someone pressed Stop): the generation
ends there, failed, and nothing is stored, so the previous version stays current."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from bot.services.errors import ServiceError


class Step(enum.StrEnum):
    UNDERSTANDING = "understanding"  # the request is read, the prompt built
    WRITING = "writing"  # the model writes the code (again, on a repair round)
    CHECKING = "checking"  # the version's self-checks run in the sandbox
    CHECKED = "checked"  # they ran: detail says how many passed
    STORING = "storing"  # about to be stored as the new version


@dataclass(frozen=True)
class StepEvent:
    step: Step
    detail: str = ""
    attempt: int = 0  # 0 the first answer, then each repair round


Progress = Callable[[StepEvent], None]


def no_progress(_: StepEvent) -> None:
    return None


class GenerationStopped(ServiceError):
    """Someone stopped the generation: it ended failed, nothing was stored."""

    code = "generation_stopped"
