"""The HTTP side of the Web API fake: Web API methods (form or JSON bodies), response_urls, the
upload URLs of files.getUploadURLExternal, hosted files (200 + a login page without a usable
token, as Slack does), and a control surface for tests in other processes."""

from __future__ import annotations

import contextlib
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlparse

if TYPE_CHECKING:
    from tests.fakes.slack_api import MockSlackAPI

_FILE_PATH = re.compile(r"^/files-pri/T\w+-(F\w+)/")


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connect at once under load (the default is 5)
    daemon_threads = True


def serve(mock: MockSlackAPI) -> tuple[_Server, threading.Thread]:
    server = _Server(("127.0.0.1", 0), _handler(mock))
    # A short poll interval: stop() returns at once instead of after up to half a second.
    loop = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    loop.daemon = True
    return server, loop


def _handler(mock: MockSlackAPI) -> type[BaseHTTPRequestHandler]:
    from tests.fakes.slack_api import Call

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body are two writes: without this, on a kept-alive connection the body
        # waits for the client's delayed ACK (40 ms), as no real Slack server makes it wait.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            return

        def setup(self) -> None:
            super().setup()
            with mock.connections_lock:
                mock.connections.add(self.connection)

        def finish(self) -> None:
            with mock.connections_lock:
                mock.connections.discard(self.connection)
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # dropped
                super().finish()

        def handle(self) -> None:
            with contextlib.suppress(ConnectionResetError, BrokenPipeError):  # dropped
                super().handle()

        def _token(self) -> str | None:
            auth = self.headers.get("Authorization", "")
            return auth[7:] if auth.startswith("Bearer ") else None

        def _send(
            self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
        ) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _calls(self, query: dict[str, str]) -> None:
            # Control surface for a test in another process: the recorded calls as JSON,
            # optionally ?method=chat.update&since=SEQ; ?count=1 answers {"count": N}.
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
            # Uploaded bytes are recorded as they came; over this JSON door they show as a size.
            body = json.dumps(calls, default=lambda o: f"<{len(o)} bytes>")
            self._send(200, body.encode(), "application/json")

        def do_GET(self) -> None:
            url = urlparse(self.path)
            if url.path == "/_calls":
                self._calls(dict(parse_qsl(url.query)))
                return
            found = _FILE_PATH.match(url.path)
            if found is None:
                self._send(404, b"not found", "text/plain")
                return
            file_id, token = found.group(1), self._token()
            host = self.headers.get("Host", "")
            mock.record(
                Call(
                    "file",
                    {"id": file_id, "host": host},
                    token,
                    host=host,
                    peer=self.client_address,
                )
            )
            if file_id in mock.redirects:
                self._send(302, b"", "text/plain", {"Location": mock.redirects[file_id]})
                return
            if token not in mock.tokens or token in mock.revoked or file_id not in mock.files:
                # What Slack does without a usable token: 200 and a login page.
                page = b"<html><body>Sign in to Slack</body></html>"
                self._send(200, page, "text/html; charset=utf-8")
                return
            kind, data = mock.files[file_id]
            self._send(200, data, kind)

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
                params = {"file_id": path.rsplit("/", 1)[1], "size": len(raw), "content": raw}
                mock.record(Call("upload", params, token))
                self._send(200, b"OK - " + str(len(raw)).encode(), "text/plain")
                return
            kind = self.headers.get("Content-Type", "")
            if "json" in kind:
                params = json.loads(raw or b"{}")
            else:
                params = dict(parse_qsl(raw.decode()))
                token = token or params.get("token")
            if path.startswith("/response/"):
                mock.record(Call("response_url", params, token, path=path))
                self._send(200, b"ok", "text/plain")
                return
            method = path[len("/api/") :] if path.startswith("/api/") else path.strip("/")
            for key in ("blocks", "view", "files", "outputs"):
                if isinstance(params.get(key), str):
                    with contextlib.suppress(ValueError):
                        params[key] = json.loads(params[key])
            status, headers, body = mock.answer(method, params, token)
            call = Call(
                method,
                params,
                token,
                status=status,
                ok=bool(body.get("ok")),
                answer_ts=body.get("ts"),
                error=body.get("error"),
                peer=self.client_address,
            )
            mock.record(call)
            self._send(
                status, json.dumps(body).encode(), "application/json; charset=utf-8", headers
            )

    return Handler
