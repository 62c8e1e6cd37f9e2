"""A new version of a task as it is stored: its code, its metadata (the seed's
``metadata.json``), what asked for it, what it cost and how its checks went."""

from __future__ import annotations

from datetime import datetime

from bot.services.generation import PROMPT_VERSION, Generated
from storage.kinds import RequestKind, VersionState
from storage.models import TaskVersion


def new_version(
    task_id: str,
    number: int,
    generated: Generated,
    *,
    task_type: str,
    request_kind: RequestKind,
    request_text: str,
    requested_by: str,
    at: datetime,
    cost_usd: float | None,
) -> TaskVersion:
    """Version ``number`` of the task, ``ready`` when its checks passed, else a ``draft``."""
    metadata = {
        "name": generated.name,
        "title": generated.title,
        "summary": generated.summary,
        "task_type": task_type,
        "inputs": dict(generated.inputs),
        "outputs": dict(generated.outputs),
        "dependencies": list(generated.dependencies),
        "model": generated.model,
        "prompt_version": PROMPT_VERSION,
        "created_at": at.isoformat(),
    }
    version = TaskVersion(
        task_id=task_id,
        number=number,
        code=generated.code,
        meta=metadata,
        request_kind=request_kind.value,
        request_text=request_text,
        requested_by=requested_by,
        change_summary=generated.change_summary or None,
        model=generated.model,
        prompt_version=PROMPT_VERSION,
        input_tokens=generated.input_tokens,
        output_tokens=generated.output_tokens,
        model_requests=generated.model_requests,
        created_at=at,
        check_cpu_seconds=generated.check_cpu_seconds,
        cost_usd=cost_usd,
        response_mode=generated.response_mode or None,
    )
    version.checks = [c.as_dict() for c in generated.checks]
    version.check_results = [r.as_dict() for r in generated.check_results]
    version.replaced_checks = [
        {"name": name, "reason": reason} for name, reason in generated.replaced_checks
    ]
    version.check_seconds = generated.check_seconds
    state = VersionState.READY if generated.checks_passed else VersionState.DRAFT
    version.state = state.value
    return version
