"""A Slack Web API on loopback, as Bolt tests itself: it records every call and answers like the
real Slack, errors and limits included (see ``slack_objects`` for the catalogue). Point
``WebClient(base_url=...)`` (``SLACK_API_URL``) at ``api_url``.

Besides scripted failures (``fail``), it keeps the state real errors come from: messages it
posted (``chat.update`` of any other ts, or of a ``delete_message``d one, answers
``message_not_found``), archived channels, revoked tokens, per-tier rate limits
(``enforce_tiers``) and the upload file-count limit of ``files.completeUploadExternal``."""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.fakes import slack_objects as real
from tests.fakes.slack_http import serve
from tests.fakes.slack_surfaces import SURFACE_METHODS, Surfaces


@dataclass
class Call:
    method: str  # Web API method ("chat.postMessage"), or "response_url", "upload", "file"
    params: dict[str, Any]
    token: str | None
    at: float = field(default_factory=time.monotonic)
    status: int = 200  # the HTTP status the mock answered (429 while rate limited)
    ok: bool = True  # the body's "ok"
    seq: int = 0  # order of recording, across all methods
    answer_ts: str | None = None  # the ts the mock gave a posted message
    path: str = ""  # the URL path (tells response_url calls apart)
    error: str | None = None  # the body's "error" when not ok
    host: str = ""  # the Host header the request came with
    peer: tuple[str, int] | None = None  # the client's address: which connection it came on

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "params": self.params,
            "status": self.status,
            "ok": self.ok,
            "error": self.error,
            "answer_ts": self.answer_ts,
            "path": self.path,
            "at": self.at,
        }


Answer = tuple[int, dict[str, str], dict[str, Any]]


class MockSlackAPI:
    def __init__(self, *, bot_token: str = "xoxb-test", team_id: str = "T1") -> None:
        self.calls: list[Call] = []
        self.tokens = {bot_token: team_id}
        self.files: dict[str, tuple[str, bytes]] = {}  # file id -> (content type, data)
        self.file_objects: dict[str, dict[str, Any]] = {}  # file id -> what files.info says
        self.redirects: dict[str, str] = {}  # file id -> where its URL redirects
        self.failures: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.rate_limited_until: dict[str, float] = {}
        self.oauth_answer: dict[str, Any] | None = None
        self.messages: set[tuple[str, str]] = set()  # (channel, ts) of messages that exist
        self.archived: set[str] = set()
        # channel -> member user ids, for conversations.members (unknown: channel_not_found)
        self.channel_members: dict[str, list[str]] = {}
        self.revoked: set[str] = set()
        self.limiter: real.TierLimiter | None = None
        self.vanishing: list[str] = []  # posts whose text contains one of these vanish at once
        self.hooks: list[tuple[str, Callable[[], None]]] = []  # run after a matching post
        # users.info answers (id -> user object); conversations.replies threads; function
        # executions (Workflow Builder steps) Slack started and how each was completed.
        self.users: dict[str, dict[str, Any]] = {}
        self.threads: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.executions: dict[str, str] = {}  # function_execution_id -> its workflow token
        self.completions: dict[str, list[tuple[str, dict[str, Any]]]] = defaultdict(list)
        self.surfaces = Surfaces()  # views, membership, streaming (tests/fakes/slack_surfaces.py)
        self._ts = itertools.count(1)
        self._files = itertools.count(1)
        self._lock = threading.RLock()  # hooks may call back into the mock
        self._cond = threading.Condition(self._lock)
        self.connections: set[socket.socket] = set()  # the clients' open connections
        self.connections_lock = threading.Lock()
        self._server, self._thread = serve(self)

    # --- lifecycle and addresses --------------------------------------------------------------

    def start(self) -> MockSlackAPI:
        self._thread.start()
        return self

    def drop_connections(self) -> None:
        """Close every open client connection, as a server does with idle ones, without a
        word to the client: it finds out at its next request."""
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base}/response/{name}"

    def host_file(
        self, name: str, data: bytes, content_type: str = "text/csv", *, mode: str = "hosted"
    ) -> dict[str, Any]:
        """Serve a file like files.slack.com does; returns its file object as a message event
        carries it. ``mode``: hosted, check_file_info (only the id; files.info describes it),
        hidden_by_limit or tombstone (stubs, as Slack sends them)."""
        file_id = f"F{next(self._files):08d}"
        full = real.hosted_file(
            file_id=file_id, name=name, size=len(data), mimetype=content_type, base=self.base
        )
        self.files[file_id] = (content_type, data)
        self.file_objects[file_id] = full
        if mode == "hidden_by_limit":
            self.file_objects[file_id] = real.hidden_by_limit_stub(file_id)
            return real.hidden_by_limit_stub(file_id)
        if mode == "tombstone":
            del self.file_objects[file_id]
            return real.tombstone_stub(file_id)
        if mode == "check_file_info":
            return real.check_file_info_stub(file_id)
        return full

    def redirect_file(self, file: dict[str, Any], to: str) -> None:
        """The file's URLs answer 302 to ``to`` (another host, say)."""
        self.redirects[str(file["id"])] = to

    # --- scripting ----------------------------------------------------------------------------

    def fail(self, method: str, error: str, *, times: int | None = 1, **match: Any) -> None:
        """The next ``times`` calls (None: every call) of ``method`` whose params include
        ``match`` answer ``error``, with the HTTP status Slack sends it with."""
        self.failures[method].append({"error": error, "match": match, "times": times})

    def rate_limit(self, method: str, seconds: float, *, token: str | None = None) -> None:
        """Answer ``method`` 429 with Retry-After for ``seconds`` (only for ``token``'s
        workspace when given: Slack's limits are per workspace)."""
        key = f"{method} {token}" if token else method
        self.rate_limited_until[key] = time.monotonic() + seconds

    def enforce_tiers(self, *, scale: float = 1.0) -> None:
        """Rate-limit every method by its tier, with minutes ``scale`` times shorter."""
        self.limiter = real.TierLimiter(scale=scale)

    def delete_message(self, channel: str, ts: str) -> None:
        self.messages.discard((channel, ts))

    def delete_posts(self, containing: str) -> None:
        """Messages posted from now on whose text contains ``containing`` are deleted (by a
        person, say) as soon as they are posted: later updates answer message_not_found."""
        self.vanishing.append(containing)

    def after_post(self, containing: str, do: Callable[[], None]) -> None:
        """Right after a message whose text contains ``containing`` is posted, ``do()``: say,
        revoke a token the moment the run message exists."""
        self.hooks.append((containing, do))

    def add_user(self, user_id: str, *, tz: str, team: str = "T1") -> None:
        """A person users.info describes (with their time zone, as Slack reports it)."""
        self.users[user_id] = real.user_object(user_id, tz=tz, team=team)

    def thread(self, channel: str, ts: str, messages: list[dict[str, Any]]) -> None:
        """What conversations.replies answers for the thread ``ts`` (its root first)."""
        self.threads[(channel, ts)] = messages

    def start_execution(self, execution_id: str, *, token: str, team: str = "T1") -> None:
        """Slack started a workflow step: its execution id and its short-lived token."""
        self.executions[execution_id] = token
        self.tokens[token] = team

    def archive(self, channel: str) -> None:
        self.archived.add(channel)

    def revoke(self, token: str) -> None:
        self.revoked.add(token)

    # --- inspection ---------------------------------------------------------------------------

    def of(self, method: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.method == method]

    def wait_for(
        self, method: str, count: int = 1, *, timeout: float = 20.0, **match: Any
    ) -> list[Call]:
        """Block until ``count`` calls of ``method`` matching ``match`` were made."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = [
                    c
                    for c in self.calls
                    if c.method == method and all(c.params.get(k) == v for k, v in match.items())
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"{method} x{count} {match} not seen; calls: {seen}")
                self._cond.wait(left)

    def wait_until(
        self, found: Callable[[list[Call]], Any], *, timeout: float = 20.0, what: str = ""
    ) -> Any:
        """Block until ``found(calls)`` returns something truthy (woken by each new call)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                result = found(list(self.calls))
                if result:
                    return result
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"{what or 'condition'} not seen; calls: {seen}")
                self._cond.wait(left)

    # --- answering ----------------------------------------------------------------------------

    def record(self, call: Call) -> None:
        with self._cond:
            call.seq = len(self.calls) + 1
            self.calls.append(call)
            self._cond.notify_all()

    def _scripted(self, method: str, params: dict[str, Any]) -> Answer | None:
        queue = self.failures.get(method)
        for failure in list(queue or ()):
            if all(params.get(k) == v for k, v in failure["match"].items()):
                if failure["times"] is not None:
                    failure["times"] -= 1
                    if failure["times"] <= 0:
                        queue.remove(failure)  # type: ignore[union-attr]
                return _error(failure["error"])
        return None

    def _limited(
        self, method: str, params: dict[str, Any], team: str, token: str | None
    ) -> Answer | None:
        until = max(
            self.rate_limited_until.get(method, 0),
            self.rate_limited_until.get(f"{method} {token}", 0),
        )
        wait = until - time.monotonic()
        if wait <= 0 and self.limiter is not None and method != "oauth.v2.access":
            wait = self.limiter.retry_after(team=team, method=method, channel=params.get("channel"))
        if wait > 0:
            return _error("ratelimited", retry_after=wait)
        return None

    def answer(self, method: str, params: dict[str, Any], token: str | None) -> Answer:
        with self._lock:
            team = self.tokens.get(token or "", "")
            limited = self._limited(method, params, team, token)
            if limited is not None:
                return limited
            scripted = self._scripted(method, params)
            if scripted is not None:
                return scripted
            if method == "oauth.v2.access":
                return 200, {}, self.oauth_answer or {"ok": False, "error": "invalid_code"}
            if token in self.revoked:
                return _error("token_revoked")
            if not team:
                return _error("invalid_auth")
            return self._method(method, params, team)

    def _complete(self, method: str, params: dict[str, Any]) -> Answer:
        problem = _complete_args(method, params)
        if problem is not None:
            return _error(problem)
        execution = str(params["function_execution_id"])
        if execution not in self.executions:
            return _error("function_execution_not_found")
        self.completions[execution].append((method, params))
        return _ok()

    def _method(self, method: str, params: dict[str, Any], team: str) -> Answer:
        channel = str(params.get("channel") or params.get("channel_id") or "")
        if method.startswith(("chat.", "files.completeUpload")) and channel in self.archived:
            return _error("is_archived")
        if method in SURFACE_METHODS:
            for member_of, users in self.channel_members.items():  # one membership for both
                self.surfaces.members[member_of].update(users)
            return self.surfaces.answer(method, params, self.messages)
        if method == "auth.test":
            return _ok(
                url="https://test.slack.com/",
                team="Test",
                user="taskbot",
                team_id=team,
                user_id="UBOT",
                bot_id="BBOT",
                is_enterprise_install=False,
            )
        if method == "chat.postMessage":
            ts = f"{1700000000 + next(self._ts)}.000100"
            text = str(params.get("text") or "")
            if not any(v in text for v in self.vanishing):
                self.messages.add((channel, ts))
            for containing, do in self.hooks:
                if containing in text:
                    do()
            return _ok(channel=channel, ts=ts, message={"text": params.get("text"), "ts": ts})
        if method == "chat.update":
            if (channel, str(params.get("ts"))) not in self.messages:
                return _error("message_not_found")
            return _ok(channel=channel, ts=params.get("ts"), text=params.get("text"))
        if method == "chat.postEphemeral":
            return _ok(message_ts=f"{1700000000 + next(self._ts)}.000200")
        if method == "chat.getPermalink":
            link = f"https://test.slack.com/archives/{channel}/p{params.get('message_ts')}"
            return _ok(channel=channel, permalink=link)
        if method == "files.getUploadURLExternal":
            file_id = f"FUP{next(self._ts)}"
            return _ok(upload_url=f"{self.base}/upload/{file_id}", file_id=file_id)
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            if len(files) > real.COMPLETE_UPLOAD_MAX_FILES:
                return _error("internal_error")
            return _ok(files=[{"id": f["id"], "title": f.get("title")} for f in files])
        if method == "users.info":
            user = self.users.get(str(params.get("user")))
            return _ok(user=user) if user is not None else _error("user_not_found")
        if method == "conversations.replies":
            if not params.get("ts"):
                return _error("invalid_arguments")
            thread = self.threads.get((channel, str(params.get("ts"))))
            if thread is None:
                return _error("thread_not_found")
            return _ok(messages=thread, has_more=False, response_metadata={"next_cursor": ""})
        if method in ("functions.completeSuccess", "functions.completeError"):
            return self._complete(method, params)
        if method == "conversations.members":
            return self._members(channel, params)
        if method == "files.info":
            described = self.file_objects.get(str(params.get("file")))
            if described is None:
                return _error(
                    "file_deleted" if params.get("file") in self.files else "file_not_found"
                )
            return _ok(file=described)
        return _ok()

    def _members(self, channel: str, params: dict[str, Any]) -> Answer:
        """Pages of ``limit`` (Slack: at most 1000) with ``response_metadata.next_cursor``."""
        joined = sorted(self.surfaces.members.get(channel, ()))  # who joined via surfaces
        if channel not in self.channel_members and not joined:
            return _error("channel_not_found")
        listed = self.channel_members.get(channel, [])
        members = listed + [u for u in joined if u not in listed]
        limit = max(1, min(int(params.get("limit") or 100), 1000))
        cursor = str(params.get("cursor") or "")
        start = int(cursor.removeprefix("dXNlcjo")) if cursor else 0
        if cursor and not cursor.startswith("dXNlcjo"):
            return _error("invalid_cursor")
        page = members[start : start + limit]
        more = start + limit < len(members)
        next_cursor = f"dXNlcjo{start + limit}" if more else ""
        return _ok(members=page, response_metadata={"next_cursor": next_cursor})


def _complete_args(method: str, params: dict[str, Any]) -> str | None:
    """The argument check of functions.completeSuccess / completeError: the execution id, and
    ``outputs`` (an object) or ``error`` (a non-empty string)."""
    if not params.get("function_execution_id"):
        return "invalid_arguments"
    if method == "functions.completeSuccess" and not isinstance(params.get("outputs"), dict):
        return "invalid_arguments"
    if method == "functions.completeError" and not str(params.get("error") or "").strip():
        return "invalid_arguments"
    return None


def _ok(**fields: Any) -> Answer:
    return 200, {}, {"ok": True, **fields}


def _error(error: str, *, retry_after: float = 0.0) -> Answer:
    status = real.TRANSIENT_ERRORS.get(error, 200)
    headers = {"Retry-After": str(max(1, math.ceil(retry_after)))} if status == 429 else {}
    return status, headers, {"ok": False, "error": error}


def text_of(call: Call) -> str:
    """Everything a message shows: its text and every text inside its blocks."""
    found: list[str] = [str(call.params.get("text") or "")]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "text" and isinstance(v, str):
                    found.append(v)
                else:
                    walk(v)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(call.params.get("blocks"))
    walk(call.params.get("attachments"))  # where a table block goes
    walk(call.params.get("view"))
    return "\n".join(found)
