"""Tasks as tools for other AI apps: an MCP server (the official SDK, streamable HTTP) at
``/mcp``, with ``list_tasks``, ``show_task``, ``run_task`` and ``get_run``.

Imported only when ``MCP_ENABLED`` is set (the SDK and Starlette stay out of an idle web
process). Every request needs a bearer token a ``Verifier`` accepts (401 otherwise, before
the SDK sees it); each tool call verifies it again to know who asks. Runs use the task's
pinned version, else its current one, and are ordinary runs: budgets, limits and the ledger
apply. A file comes as content (text or base64) or as a URL fetched only from Slack's hosts
with the bot token (``Fetch``, given by the web role)."""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.transport_security import TransportSecuritySettings

from bot.mcp.auth import Principal, Verifier, bearer
from bot.services.container import Services
from bot.services.errors import InvalidInput, NotAllowed, ServiceError
from bot.services.runs import RunView
from bot.services.views import TaskView
from storage.errors import StorageUnavailable
from storage.kinds import ResultKind, TaskType

Fetch = Callable[[str], tuple[str, bytes]]  # a Slack file URL -> (name, bytes)
ASGIApp = Callable[[Any, Any, Any], Any]
MAX_WAIT_SECONDS = 120.0


def _task(view: TaskView) -> dict[str, Any]:
    return {
        "id": view.id,
        "name": view.name,
        "task_type": view.task_type.value,
        "needs_input_file": view.task_type is TaskType.PASSTHROUGH,
        "current_version": view.current_version,
        "pinned_version": view.pinned_version,
        "runs_version": view.trigger_version,
        "desired_action": view.desired_action,
    }


def _run(run: RunView) -> dict[str, Any]:
    result: Any = None
    if run.result is not None and run.result_kind is ResultKind.JSON:
        try:
            result = json.loads(run.result)
        except ValueError:
            result = run.result.decode("utf-8", "replace")
    elif run.result is not None and run.result_kind is ResultKind.TEXT:
        result = run.result.decode("utf-8", "replace")
    elif run.result is not None and run.result_kind is ResultKind.BYTES:
        result = {"base64": base64.b64encode(run.result).decode()}
    return {
        "run_id": run.id,
        "task_id": run.task_id,
        "version": run.version_number,
        "status": run.status.value,
        "final": run.final,
        "result": result,
        "result_truncated": run.result_truncated,
        "error_type": run.error_type,
        "error_message": run.error_message,
        "duration_seconds": run.duration_seconds,
        "output_files": [f.name for f in run.files],
    }


class McpTools:
    """The four tools over the services; plain values in, JSON-able dicts out."""

    def __init__(self, services: Services, *, fetch: Fetch | None) -> None:
        self.services = services
        self.fetch = fetch

    @staticmethod
    def need(who: Principal, scope: str) -> None:
        if not who.may(scope):
            raise NotAllowed(f"This token lacks the `{scope}` scope (see `/task tokens`).")

    def task_for(self, who: Principal, ref: str) -> TaskView:
        task = self.services.tasks.get(ref, team_id=who.team_id)
        if who.team_id is not None and task.channel_id is not None and task.creator != who.user_id:
            raise NotAllowed(
                f"Task {task.id[:8]} belongs to a channel: only its creator may use it."
            )
        return task

    def list_tasks(self, who: Principal, *, limit: int) -> list[dict[str, Any]]:
        self.need(who, "read")
        summaries = self.services.tasks.list(team_id=who.team_id, limit=max(1, min(limit, 100)))
        visible = []
        for s in summaries:
            with contextlib.suppress(ServiceError):
                visible.append(_task(self.task_for(who, s.task.id)))
        return visible

    def show_task(self, who: Principal, ref: str, *, version: int | None) -> dict[str, Any]:
        self.need(who, "read")
        task = self.task_for(who, ref)
        detail = self.services.tasks.show(task.id, version=version or task.trigger_version)
        return {
            **_task(task),
            "version": detail.version.number,
            "metadata": dict(detail.version.metadata),
            "code": detail.version.code,
        }

    def _input(
        self, *, text: str | None, b64: str | None, name: str | None, url: str | None
    ) -> tuple[str | None, bytes | None]:
        given = [x for x in (text, b64, url) if x is not None]
        if len(given) > 1:
            raise InvalidInput("Give one input: input_text, input_base64 or file_url.")
        if text is not None:
            return name or "input.txt", text.encode("utf-8")
        if b64 is not None:
            try:
                return name or "input", base64.b64decode(b64, validate=True)
            except (binascii.Error, ValueError):
                raise InvalidInput("input_base64 is not valid base64.") from None
        if url is not None:
            if self.fetch is None:
                raise InvalidInput("This server has no Slack token, so it cannot fetch file_url.")
            return self.fetch(url)
        return None, None

    def run_task(
        self,
        who: Principal,
        ref: str,
        *,
        text: str | None,
        b64: str | None,
        name: str | None,
        url: str | None,
        wait: float,
    ) -> dict[str, Any]:
        self.need(who, "run")
        task = self.task_for(who, ref)
        if task.trigger_version is None:
            raise InvalidInput(f"Task {task.id[:8]} has no working version yet.")
        input_name, data = self._input(text=text, b64=b64, name=name, url=url)
        runs = self.services.runs
        run = runs.request(
            task.id,
            requested_by=who.user_id,
            input_data=data,
            input_name=input_name,
            version=task.trigger_version,
            team_id=task.team_id,
        )
        if wait > 0:
            run = runs.wait(run.id, timeout=min(wait, MAX_WAIT_SECONDS))
        return _run(run)

    def get_run(self, who: Principal, run_id: str) -> dict[str, Any]:
        self.need(who, "read")
        run = self.services.runs.get(run_id.strip())
        self.task_for(who, run.task_id)  # a run is visible where its task is
        return _run(run)


def _who(ctx: Context[Any, Any], verify: Verifier) -> Principal:
    request = ctx.request_context.request
    headers = getattr(request, "headers", None) or {}
    token = bearer({k.lower(): v for k, v in dict(headers).items()})
    who = verify(token) if token else None
    if who is None:
        raise ToolError("Not authorised: send Authorization: Bearer <token>.")
    return who


# Tool calls (a run_task may wait a minute) get threads of their own: the loop's default
# executor also serves /healthz and must not fill up with waiting runs.
_TOOL_THREADS = ThreadPoolExecutor(max_workers=16, thread_name_prefix="taskbot-mcp")


async def _call(work: Callable[[], Any]) -> Any:
    """A service call off the event loop; a ServiceError becomes the tool's error text."""
    try:
        return await asyncio.get_running_loop().run_in_executor(_TOOL_THREADS, work)
    except (ServiceError, StorageUnavailable) as exc:
        raise ToolError(str(exc) or "The database is unreachable; try again.") from None


def build_server(tools: McpTools, verify: Verifier) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        name="taskbot",
        instructions=(
            "Taskbot's tasks are small tested Python programs a team made in Slack. List them, "
            "show one's code, run one on a file (text, base64, or a Slack file URL) and read "
            "its result. Runs use the task's pinned version, else its current one."
        ),
    )

    @server.tool(description="The tasks you may run: id, name, type, versions.")
    async def list_tasks(ctx: Context[Any, Any], limit: int = 20) -> list[dict[str, Any]]:
        who = _who(ctx, verify)
        result: list[dict[str, Any]] = await _call(lambda: tools.list_tasks(who, limit=limit))
        return result

    @server.tool(description="A task's metadata and code (the version runs use, or `version`).")
    async def show_task(
        ctx: Context[Any, Any], task_id: str, version: int | None = None
    ) -> dict[str, Any]:
        who = _who(ctx, verify)
        result: dict[str, Any] = await _call(lambda: tools.show_task(who, task_id, version=version))
        return result

    @server.tool(
        description=(
            "Run a task. A task that needs a file takes one of input_text, input_base64 (with "
            "input_name) or file_url (a Slack file's URL). Waits up to wait_seconds for the "
            "result; otherwise poll get_run."
        )
    )
    async def run_task(
        ctx: Context[Any, Any],
        task_id: str,
        input_text: str | None = None,
        input_base64: str | None = None,
        input_name: str | None = None,
        file_url: str | None = None,
        wait_seconds: float = 60.0,
    ) -> dict[str, Any]:
        who = _who(ctx, verify)
        result: dict[str, Any] = await _call(
            lambda: tools.run_task(
                who,
                task_id,
                text=input_text,
                b64=input_base64,
                name=input_name,
                url=file_url,
                wait=wait_seconds,
            )
        )
        return result

    @server.tool(description="A run's status and result.")
    async def get_run(ctx: Context[Any, Any], run_id: str) -> dict[str, Any]:
        who = _who(ctx, verify)
        result: dict[str, Any] = await _call(lambda: tools.get_run(who, run_id))
        return result

    return server


class McpApp:
    """``/mcp`` for ``bot.web.WebApp``: refuses a request without an accepted bearer token
    (401, before the SDK sees it), then hands it to the SDK's streamable HTTP app, whose
    session manager runs between ``startup`` and ``shutdown`` (the web app's lifespan)."""

    def __init__(self, services: Services, *, verify: Verifier, fetch: Fetch | None) -> None:
        self._verify = verify
        server = build_server(McpTools(services, fetch=fetch), verify)
        # The bearer token is the protection: a browser on a rebinding page cannot send it.
        self._app = server.streamable_http_app(
            streamable_http_path="/mcp",
            stateless_http=True,
            json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )
        self._stack = contextlib.AsyncExitStack()

    async def startup(self) -> None:
        await self._stack.enter_async_context(self._app.router.lifespan_context(self._app))

    async def shutdown(self) -> None:
        await self._stack.aclose()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        token = bearer(headers)
        if token is None or self._verify(token) is None:
            body = json.dumps(
                {
                    "error": {
                        "code": "unauthorized",
                        "message": "Send Authorization: Bearer <token>.",
                    }
                }
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"www-authenticate", b'Bearer realm="taskbot"'),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await self._app(scope, receive, send)
