"""Stop from Slack: the Stop button on a run message and ``/task stop <id>``.

The ack half builds one typed message; the slow half asks the stop service, which checks who
may stop (the run's starter, the task's creator, an ADMIN_USERS member) and reaches whichever
worker holds the run. Whoever may not is told so, ephemerally; the run message itself shows
the outcome once the worker recorded it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_sdk import WebClient

from bot.services.errors import NotFound
from bot.services.stops import StopResult
from bot.slack.messages import Dispatcher, Message, Origin, Reply
from bot.slack.posting import Say
from bot.slack.stop_blocks import STOP_GENERATION_ACTION, STOP_RUN_ACTION
from storage.kinds import RunStatus

if TYPE_CHECKING:
    from bot.slack.flows import SlackFlows

_RUN_ID_LENGTH = 36
_GENERATION = StopResult("", "", RunStatus.RUNNING)  # stands for "its generation" in a reply


@dataclass(frozen=True, kw_only=True)
class StopRun(Message):
    """The Stop button of a run message (its value is the run id)."""

    run_id: str


@dataclass(frozen=True, kw_only=True)
class StopGeneration(Message):
    """The Stop button of a generation (its value is the task id)."""

    task_id: str


@dataclass(frozen=True, kw_only=True)
class StopCommand(Message):
    """``/task stop <id>``: a run id, or a task id (prefix) whose runs to stop."""

    ref: str


def register(
    app: AsyncApp, dispatcher: Dispatcher, *, origin: Callable[..., Origin], delivery: Any
) -> None:
    @app.action(STOP_RUN_ACTION)
    @app.action(STOP_GENERATION_ACTION)
    async def on_stop_button(
        ack: AsyncAck, body: dict[str, Any], action: dict[str, Any], context: AsyncBoltContext
    ) -> None:
        await ack()
        where = origin(context, channel_id=str(context.channel_id or ""))
        value = str(action.get("value", ""))
        reply = Reply(response_url=body.get("response_url"))
        message: Message
        if action.get("action_id") == STOP_GENERATION_ACTION:
            message = StopGeneration(
                task_id=value, origin=where, reply=reply, delivery=delivery(body)
            )
        else:
            message = StopRun(run_id=value, origin=where, reply=reply, delivery=delivery(body))
        dispatcher.dispatch(message)


def stop_command(flows: SlackFlows, m: StopCommand, say: Say) -> None:
    flows.gate(m.origin)
    stops, origin = flows.services.stops, m.origin
    ref = m.ref.strip()
    results: list[StopResult]
    if len(ref) == _RUN_ID_LENGTH:
        try:
            results = [stops.stop_run(ref, by=origin.user_id, team_id=origin.team_id)]
        except NotFound:
            results = _stop_task(flows, origin, ref)
    else:
        results = _stop_task(flows, origin, ref)
    say(_told(results, ref))


def _stop_task(flows: SlackFlows, origin: Origin, ref: str) -> list[StopResult]:
    task = flows.services.tasks.get(ref, team_id=origin.team_id)
    try:
        _stop_generation(flows, origin, task.id)
    except NotFound:  # nothing generating: its runs, then
        return flows.services.stops.stop_task(task, by=origin.user_id)
    return [*flows.services.stops.stop_task(task, by=origin.user_id), _GENERATION]


def _stop_generation(flows: SlackFlows, origin: Origin, task_id: str) -> None:
    task = flows.services.tasks.get(task_id, team_id=origin.team_id)
    flows.generation_stops.request(
        task.id,
        by=origin.user_id,
        creator=task.creator,
        admins=flows.services.settings.admin_users,
    )


def stop_generation(flows: SlackFlows, m: StopGeneration, say: Say) -> None:
    flows.gate(m.origin)
    _stop_generation(flows, m.origin, m.task_id)
    say(f"Stopping the generation of `{m.task_id[:8]}`: the previous version stays current.")


def stop_button(flows: SlackFlows, m: StopRun, say: Say) -> None:
    flows.gate(m.origin)
    result = flows.services.stops.stop_run(m.run_id, by=m.origin.user_id, team_id=m.origin.team_id)
    say(_told([result], m.run_id))


def _told(results: list[StopResult], ref: str) -> str:
    if not results:
        return f"Nothing of `{ref[:8]}` is queued or running."
    parts = []
    runs = [r for r in results if r is not _GENERATION]
    if len(runs) != len(results):
        parts.append("its generation (the previous version stays current)")
    if runs:
        ids = ", ".join(f"`{r.run_id[:8]}`" for r in runs)
        parts.append(f"run{'s' * (len(runs) != 1)} {ids}")
    return "Stopping " + " and ".join(parts) + "."


def handlers(
    flows: SlackFlows,
) -> dict[type[Message], Callable[[Any, WebClient, Say, Any], None]]:
    """The slow halves, by message type, for ``bot.slack.dispatch.Handlers``."""
    return {
        StopRun: lambda m, _client, say, _show: stop_button(flows, m, say),
        StopCommand: lambda m, _client, say, _show: stop_command(flows, m, say),
        StopGeneration: lambda m, _client, say, _show: stop_generation(flows, m, say),
    }
