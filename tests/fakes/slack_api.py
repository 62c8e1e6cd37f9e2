"""A mock Slack Web API on loopback, as Bolt tests itself: it records every call and answers
like Slack. Point ``WebClient(base_url=...)`` (``SLACK_API_URL``) at ``api_url``."""

from __future__ import annotations

import contextlib
import itertools
import json
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlparse


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connect at once under load (the default is 5)


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

    def as_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "method": self.method,
            "params": self.params,
            "status": self.status,
            "ok": self.ok,
            "answer_ts": self.answer_ts,
            "path": self.path,
            "at": self.at,
        }


class MockSlackAPI:
    def __init__(self, *, bot_token: str = "xoxb-test", team_id: str = "T1") -> None:
        self.calls: list[Call] = []
        self.tokens = {bot_token: team_id}
        self.files: dict[str, tuple[str, bytes]] = {}  # name -> (content type, data)
        self.failures: dict[str, deque[dict[str, Any]]] = defaultdict(deque)
        self.rate_limited_until: dict[str, float] = {}
        self.oauth_answer: dict[str, Any] | None = None
        self._ts = itertools.count(1)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- lifecycle and addresses --------------------------------------------------------------

    def start(self) -> MockSlackAPI:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, name: str = "r1") -> str:
        return f"{self.base}/response/{name}"

    def host_file(self, name: str, data: bytes, content_type: str = "text/csv") -> dict[str, Any]:
        """Serve a file like files.slack.com does; returns its Slack file object."""
        self.files[name] = (content_type, data)
        return {
            "id": f"F{abs(hash(name)) % 10**8}",
            "name": name,
            "size": len(data),
            "mimetype": content_type,
            "url_private_download": f"{self.base}/files/{name}",
            "url_private": f"{self.base}/files/{name}",
        }

    # --- scripting ----------------------------------------------------------------------------

    def fail(self, method: str, error: str, **match: Any) -> None:
        """The next call of ``method`` (whose params include ``match``) answers ok: false."""
        self.failures[method].append({"error": error, "match": match})

    def rate_limit(self, method: str, seconds: float) -> None:
        self.rate_limited_until[method] = time.monotonic() + seconds

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
                    if c.method == method and all(_get(c.params, k) == v for k, v in match.items())
                ]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [c.method for c in self.calls]
                    raise AssertionError(f"{method} x{count} {match} not seen; calls: {seen}")
                self._cond.wait(left)

    # --- answering ----------------------------------------------------------------------------

    def _record(self, call: Call) -> None:
        with self._cond:
            call.seq = len(self.calls) + 1
            self.calls.append(call)
            self._cond.notify_all()

    def _answer(
        self, method: str, params: dict[str, Any], token: str | None
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        until = self.rate_limited_until.get(method, 0)
        if time.monotonic() < until:
            return (
                429,
                {"Retry-After": str(max(1, int(until - time.monotonic() + 0.999)))},
                {"ok": False, "error": "ratelimited"},
            )
        queue = self.failures.get(method)
        if queue:
            for i, failure in enumerate(queue):
                if all(_get(params, k) == v for k, v in failure["match"].items()):
                    del queue[i]
                    return 200, {}, {"ok": False, "error": failure["error"]}
        if method == "oauth.v2.access":
            return 200, {}, self.oauth_answer or {"ok": False, "error": "invalid_code"}
        if token not in self.tokens:
            return 200, {}, {"ok": False, "error": "invalid_auth"}
        team = self.tokens[token]
        if method == "auth.test":
            return (
                200,
                {},
                {
                    "ok": True,
                    "url": "https://test.slack.com/",
                    "team": "Test",
                    "user": "taskbot",
                    "team_id": team,
                    "user_id": "UBOT",
                    "bot_id": "BBOT",
                },
            )
        if method == "chat.postMessage":
            ts = f"{1700000000 + next(self._ts)}.000100"
            return (
                200,
                {},
                {
                    "ok": True,
                    "channel": params.get("channel"),
                    "ts": ts,
                    "message": {"text": params.get("text"), "ts": ts},
                },
            )
        if method == "chat.postEphemeral":
            return 200, {}, {"ok": True, "message_ts": f"{1700000000 + next(self._ts)}.000200"}
        if method == "chat.getPermalink":
            return (
                200,
                {},
                {
                    "ok": True,
                    "permalink": f"https://test.slack.com/archives/{params.get('channel')}/p{params.get('message_ts')}",
                },
            )
        if method == "files.getUploadURLExternal":
            file_id = f"FUP{next(self._ts)}"
            return (
                200,
                {},
                {"ok": True, "upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id},
            )
        if method == "files.completeUploadExternal":
            files = params.get("files")
            files = json.loads(files) if isinstance(files, str) else files or []
            return (
                200,
                {},
                {"ok": True, "files": [{"id": f["id"], "title": f.get("title")} for f in files]},
            )
        if method == "files.info":
            return 200, {}, {"ok": False, "error": "file_not_found"}
        return 200, {}, {"ok": True}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        mock = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def _token(self) -> str | None:
                auth = self.headers.get("Authorization", "")
                return auth[7:] if auth.startswith("Bearer ") else None

            def _send(
                self,
                status: int,
                body: bytes,
                content_type: str,
                headers: dict[str, str] | None = None,
            ) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for k, v in (headers or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = url.path
                if path == "/_calls":
                    # Control surface for a test in another process: the recorded calls as JSON,
                    # optionally ?method=chat.update&since=SEQ; ?count=1 answers {"count": N}.
                    query = dict(parse_qsl(url.query))
                    if "count" in query:
                        with mock._lock:
                            count = len(mock.calls)
                        self._send(200, json.dumps({"count": count}).encode(), "application/json")
                        return
                    since = int(query.get("since", "0"))
                    with mock._lock:
                        calls = [
                            c.as_json()
                            for c in mock.calls[since:]
                            if "method" not in query or c.method == query["method"]
                        ]
                    self._send(200, json.dumps(calls).encode(), "application/json")
                    return
                if path.startswith("/files/"):
                    name = path[len("/files/") :]
                    token = self._token()
                    mock._record(Call("file", {"name": name}, token))
                    if token not in mock.tokens or name not in mock.files:
                        # What Slack does without a usable token: 200 and a login page.
                        self._send(
                            200,
                            b"<html><body>Sign in to Slack</body></html>",
                            "text/html; charset=utf-8",
                        )
                        return
                    kind, data = mock.files[name]
                    self._send(200, data, kind)
                    return
                self._send(404, b"not found", "text/plain")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                path = urlparse(self.path).path
                token = self._token()
                if path == "/_rate_limit":
                    # Control surface: {"methods": [...], "seconds": 10} answers those methods
                    # 429 with Retry-After for that long.
                    script = json.loads(raw or b"{}")
                    for name in script.get("methods", []):
                        mock.rate_limit(str(name), float(script.get("seconds", 0)))
                    self._send(200, b'{"ok": true}', "application/json")
                    return
                if path.startswith("/upload/"):
                    mock._record(
                        Call("upload", {"file_id": path.rsplit("/", 1)[1], "size": len(raw)}, token)
                    )
                    self._send(200, b"OK - " + str(len(raw)).encode(), "text/plain")
                    return
                kind = self.headers.get("Content-Type", "")
                if "json" in kind:
                    params = json.loads(raw or b"{}")
                else:
                    params = dict(parse_qsl(raw.decode()))
                    token = token or params.get("token")
                if path.startswith("/response/"):
                    mock._record(Call("response_url", params, token, path=path))
                    self._send(200, b"ok", "text/plain")
                    return
                method = path[len("/api/") :] if path.startswith("/api/") else path.strip("/")
                for key in ("blocks", "view"):
                    if isinstance(params.get(key), str):
                        with contextlib.suppress(ValueError):
                            params[key] = json.loads(params[key])
                status, headers, body = mock._answer(method, params, token)
                mock._record(
                    Call(
                        method,
                        params,
                        token,
                        status=status,
                        ok=bool(body.get("ok")),
                        answer_ts=body.get("ts"),
                    )
                )
                self._send(
                    status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
                )

        return Handler


def _get(params: dict[str, Any], key: str) -> Any:
    return params.get(key)


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
    walk(call.params.get("view"))
    return "\n".join(found)
