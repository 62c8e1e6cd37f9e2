"""The slow halves of Slack interactions, run on Taskbot's own executor after the ack."""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.services.access import check_gate, check_task_access
from bot.services.container import Services
from bot.services.errors import InvalidInput, NotFound, ServiceError
from bot.services.fairness import FairPool, Ticket
from bot.services.runs import ReplyTarget
from bot.services.views import TaskDetail, TaskView, Workspace
from bot.slack import blocks
from bot.slack.files import SlackFiles, Upload, upload_to_thread
from bot.slack.messages import Origin
from bot.slack.posting import NOT_IN_CHANNEL, Say, nobody, not_here, post, update
from bot.slack.progress import GenerationStops, live_steps
from bot.slack.shares import capped, model_turn
from bot.slack.stop_blocks import STOP_GENERATION_ACTION, stop_button
from storage.errors import StorageUnavailable
from storage.kinds import TaskType

logger = logging.getLogger(__name__)

_MENTION = re.compile(r"<@[A-Z0-9]+>\s*")


class SlackFlows:
    def __init__(
        self,
        *,
        services: Services,
        files: SlackFiles,
        workers: ThreadPoolExecutor,
        generators: FairPool,
    ) -> None:
        self.services = services
        self.deliveries = services.deliveries
        self.files = files
        self.workers = workers
        self.generators = generators
        settings = services.settings
        self.allowed_channels = settings.allowed_channels
        self.allowed_users = settings.allowed_users
        self.max_files = settings.max_files_per_message
        self.generation_stops = GenerationStops()

    # --- plumbing -------------------------------------------------------------------------

    def submit(
        self,
        say: Say,
        work: Callable[[], object],
        *,
        delivery: tuple[str, str] | None = None,
        ticket: Ticket | None = None,
    ) -> Future[None]:
        """Run ``work`` after the ack, once per delivery (kind, key): Slack's retries of a
        delivery are dropped here, off the ack's path. Any failure is logged and told.

        Work with a ``ticket`` (waiting on the model) goes to the fair pool, which takes users
        in turn, so a stalled model or one user's burst never delays the quick first replies
        that run on ``workers``."""

        def guarded() -> None:
            try:
                if delivery is not None and not self.deliveries.first_time(
                    delivery[1], kind=delivery[0]
                ):
                    logger.info("ignoring a repeated delivery %s", delivery[1])
                    return
                work()
            except (ServiceError, StorageUnavailable) as exc:
                say(str(exc))
            except SlackApiError as exc:
                logger.exception("Slack refused a call")
                say(f"Slack refused a call ({exc.response.get('error')}). Try again in a moment.")
            except Exception:
                logger.exception("a Slack flow failed")
                say("Something went wrong on my side; it is logged. Try again in a moment.")

        if ticket is not None:
            return self.generators.submit(ticket, guarded)
        return self.workers.submit(guarded)

    def gate(self, origin: Origin) -> None:
        check_gate(
            channel_id=origin.channel_id,
            user_id=origin.user_id,
            allowed_channels=self.allowed_channels,
            allowed_users=self.allowed_users,
        )

    def task_for(self, origin: Origin, ref: str) -> TaskView:
        task = self.services.tasks.get(ref, team_id=origin.team_id)
        check_task_access(
            task, team_id=origin.team_id, channel_id=origin.channel_id, user_id=origin.user_id
        )
        return task

    # --- create -----------------------------------------------------------------------------

    def create(
        self,
        client: WebClient,
        origin: Origin,
        *,
        description: str,
        task_type: str,
        say: Say,
        direct: bool = False,
    ) -> None:
        self.gate(origin)
        tasks = self.services.tasks
        ticket = model_turn(self.generators, origin, say)
        try:
            task = tasks.start(
                description=description,
                task_type=task_type,
                requested_by=origin.user_id,
                source="slack",
                workspace=Workspace(origin.team_id, origin.enterprise_id),
                channel_id=origin.channel_id,
            )
            try:
                root = post(client, origin.channel_id, blocks.task_generating(task))
            except SlackApiError as exc:
                if exc.response.get("error") not in NOT_IN_CHANNEL:
                    raise
                tasks.abandon(task.id, reason="Taskbot is not in the channel")
                say(not_here(direct=direct or origin.channel_id.startswith("D")))
                self.generators.release(ticket)
                return
            tasks.attach_thread(task.id, channel_id=origin.channel_id, thread_ts=root)
        except BaseException:
            self.generators.release(ticket)
            raise
        self.submit(say, lambda: self._generate_first(client, task, root, ticket), ticket=ticket)

    def _generate_first(
        self, client: WebClient, task: TaskView, root: str, ticket: Ticket | None = None
    ) -> None:
        assert task.channel_id
        live = live_steps(
            client, task, thread_ts=root, user_id=task.creator, stops=self.generation_stops
        )
        try:
            detail = self.services.tasks.generate_first(task.id, progress=live.step)
        except ServiceError as exc:
            live.finish(ok=False, detail=str(exc))
            update(client, task.channel_id, root, blocks.task_failed(task, str(exc)))
            return
        except Exception:  # whatever broke, the task and its root message do not stay generating
            logger.exception("generating task %s failed", task.id[:8])
            reason = "Something went wrong on our side while writing the code: try again."
            self.services.tasks.abandon(task.id, reason=reason)
            live.finish(ok=False, detail=reason)
            update(client, task.channel_id, root, blocks.task_failed(task, reason))
            return
        finally:
            self.generation_stops.end(task.id)
            if ticket is not None:
                self.generators.release(ticket)  # done with the model: the user may ask again
        live.finish(ok=True)
        self.post_version(client, detail, channel=task.channel_id, thread_ts=root)
        update(client, task.channel_id, root, blocks.task_ready(detail))

    def post_version(
        self, client: WebClient, detail: TaskDetail, *, channel: str, thread_ts: str
    ) -> None:
        post(client, channel, blocks.version_metadata(detail), thread_ts)
        number = detail.version.number
        code = blocks.code_message(detail.version.code, number=number)
        if code is not None:
            post(client, channel, code, thread_ts)
        else:
            upload_to_thread(
                client,
                channel=channel,
                thread_ts=thread_ts,
                uploads=[
                    Upload(
                        f"{detail.task.name or 'task'}_v{number}.py", detail.version.code.encode()
                    )
                ],
                comment=f"v{number} code (long, so attached as a file)",
            )

    # --- run --------------------------------------------------------------------------------

    def run_command(
        self,
        client: WebClient,
        origin: Origin,
        *,
        ref: str,
        text: str | None,
        trigger_id: str,
        say: Say,
    ) -> None:
        self.gate(origin)
        task = self.task_for(origin, ref)
        self._run_or_ask(client, origin, task=task, text=text, trigger_id=trigger_id, say=say)

    def run_button(
        self, client: WebClient, origin: Origin, *, task_id: str, trigger_id: str, say: Say
    ) -> None:
        self.gate(origin)
        task = self.task_for(origin, task_id)
        self._run_or_ask(client, origin, task=task, text=None, trigger_id=trigger_id, say=say)

    def _run_or_ask(
        self,
        client: WebClient,
        origin: Origin,
        *,
        task: TaskView,
        text: str | None,
        trigger_id: str,
        say: Say,
    ) -> None:
        if task.current_version is None:
            raise InvalidInput(f"Task `{task.id[:8]}` has no working version yet.")
        if text is not None and task.task_type is TaskType.PASSTHROUGH:
            self.start_run(client, origin, task=task, data=text.encode("utf-8"), name="input.txt")
        elif task.task_type is TaskType.PASSTHROUGH:
            metadata = json.dumps({"task": task.id, "channel": origin.channel_id})
            client.views_open(
                trigger_id=trigger_id, view=blocks.run_modal(task=task, private_metadata=metadata)
            )
        else:
            self.start_run(client, origin, task=task, data=None, name=None)
        if origin.channel_id != task.channel_id:
            say(f"Running task `{task.id[:8]}` in its thread in <#{task.channel_id}>.")

    def run_modal(
        self,
        client: WebClient,
        origin: Origin,
        *,
        metadata: str,
        files: Sequence[Mapping[str, Any]],
        say: Say,
    ) -> None:
        self.gate(origin)
        task_id = str(json.loads(metadata or "{}").get("task", ""))
        task = self.task_for(origin, task_id)
        if not files:
            raise InvalidInput("Add at least one file to run the task on.")
        for file in capped(files, cap=self.max_files, say=say):
            name, data = self.files.download(client, file)
            self.start_run(client, origin, task=task, data=data, name=name)

    def start_run(
        self,
        client: WebClient,
        origin: Origin,
        *,
        task: TaskView,
        data: bytes | None,
        name: str | None,
        version: int | None = None,
    ) -> tuple[str, str]:
        """Queue a run (of ``version``, else the current one), post its message in the task's
        thread; returns the run's id and its message's ts."""
        if not task.channel_id or not task.thread_ts:
            raise NotFound(f"Task `{task.id[:8]}` has no Slack thread to run in.")
        runs = self.services.runs
        run = runs.request(
            task.id,
            requested_by=origin.user_id,
            input_data=data,
            input_name=name,
            version=version,
            team_id=origin.team_id,
            reply=ReplyTarget(
                origin.team_id, origin.enterprise_id, task.channel_id, task.thread_ts
            ),
        )
        # Queued first, then its message: the run does not wait for Slack. A message that
        # cannot be posted (the bot not in the channel, say) stops the run nobody would see.
        try:
            ts = post(client, task.channel_id, blocks.run_message(run), task.thread_ts)
        except BaseException:
            with contextlib.suppress(ServiceError):
                self.services.stops.stop_run(run.id, by=origin.user_id, operator=True)
            raise
        runs.attach_reply(run.id, message_ts=ts, shown_status=run.status)
        return run.id, ts

    # --- thread replies -----------------------------------------------------------------------

    def thread_message(
        self, client: WebClient, origin: Origin, *, event: Mapping[str, Any], say: Say
    ) -> None:
        thread_ts = str(event.get("thread_ts") or "")
        task = self.services.tasks.by_thread(channel_id=origin.channel_id, thread_ts=thread_ts)
        if task is None or task.team_id != origin.team_id:
            return  # not a task's thread
        self.gate(origin)
        files = event.get("files") or []
        if files:
            for file in capped(files, cap=self.max_files, say=say):
                try:
                    name, data = self.files.download(client, file)
                    self.start_run(client, origin, task=task, data=data, name=name)
                except ServiceError as exc:
                    say(str(exc))
            return
        feedback = _MENTION.sub("", str(event.get("text") or "")).strip()
        if feedback:
            self.refine(client, origin, task=task, feedback=feedback, say=say)

    def refine(
        self, client: WebClient, origin: Origin, *, task: TaskView, feedback: str, say: Say
    ) -> None:
        assert task.channel_id and task.thread_ts
        channel, thread = task.channel_id, task.thread_ts
        ticket = model_turn(self.generators, origin, say)
        asking = blocks.refining(feedback)
        asking = blocks.Message(
            asking.text,
            [*asking.blocks, stop_button(action_id=STOP_GENERATION_ACTION, value=task.id)],
        )
        try:
            placeholder = post(client, channel, asking, thread)
        except BaseException:
            self.generators.release(ticket)
            raise
        self.submit(
            nobody,
            lambda: self._refine(
                client, origin, task=task, feedback=feedback, placeholder=placeholder
            ),
            ticket=ticket,
        )

    def _refine(
        self, client: WebClient, origin: Origin, *, task: TaskView, feedback: str, placeholder: str
    ) -> None:
        assert task.channel_id and task.thread_ts
        channel, thread = task.channel_id, task.thread_ts
        live = live_steps(
            client, task, thread_ts=thread, user_id=origin.user_id, stops=self.generation_stops
        )
        try:
            result = self.services.tasks.refine(
                task.id,
                feedback=feedback,
                requested_by=origin.user_id,
                team_id=origin.team_id,
                progress=live.step,
            )
        except ServiceError as exc:
            live.finish(ok=False, detail=str(exc))
            update(client, channel, placeholder, blocks.refine_failed(str(exc)))
            return
        finally:
            self.generation_stops.end(task.id)
        live.finish(ok=True)
        update(client, channel, placeholder, blocks.refinement_summary(result))
        if len(result.diff) > blocks.CODE_INLINE_LIMIT:
            upload_to_thread(
                client,
                channel=channel,
                thread_ts=thread,
                uploads=[
                    Upload(
                        f"v{result.previous.number}_to_v{result.version.number}.diff",
                        result.diff.encode(),
                    )
                ],
                comment="The diff",
            )
        detail = TaskDetail(result.task, result.version)
        self.post_version(client, detail, channel=channel, thread_ts=thread)
        update(client, channel, thread, blocks.task_ready(detail))
