"""``POST /api/run/{id}/stop``: stop a queued or running run; it ends ``killed`` (stopped)."""

from __future__ import annotations

from bot.api.auth import Caller
from bot.api.routes import _RUN_ID, RunId, Svc, api_router, errors
from bot.api.run_models import RunOut
from bot.services.errors import NotFound
from bot.services.principal import PrincipalKind

router = api_router()


@router.post(
    "/api/run/{id}/stop",
    status_code=202,
    operation_id="stopRun",
    summary="Stop a queued or running run: it ends killed (reason stopped).",
    response_description="The run, as it is when the stop was asked.",
    responses=errors(403),
)
def stop_run(caller: Caller, services: Svc, id: RunId) -> RunOut:
    if not _RUN_ID.match(id):
        raise NotFound(f"No run {id[:40]!r}.")
    run_id = id.lower()
    try:  # a run is seen where its task is
        services.personal.task(caller, services.runs.get(run_id).task_id)
    except NotFound:
        raise NotFound(f"No run {run_id}.") from None
    stopped = services.stops.stop_run(
        run_id,
        by=caller.user_id,
        team_id=caller.team_id,
        operator=caller.kind is PrincipalKind.OPERATOR,
    )
    return RunOut.of(services.runs.get(stopped.run_id))
