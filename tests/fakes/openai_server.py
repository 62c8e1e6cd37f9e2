"""A fake OpenAI-compatible server on loopback: a queue of answers and a history of requests.

The real ``openai`` client talks to it over real HTTP, so retries, timeouts and status codes are
exercised exactly as in production.

It can be as loose as the servers operators really run: ``rejects`` names the
``response_format`` types it refuses, answered with a 400 in the shape of a real server's error
(``reject_style``: OpenAI's ``invalid_request_error`` naming the type, vLLM's top-level
``{"object": "error"}``, LM Studio's bare string listing what it accepts, or OpenAI's
"Unrecognized request argument" for a server that knows no ``response_format`` at all). Rejected
requests are kept in ``requests`` too (they are requests the client made) but consume no answer.
``reply_markdown`` answers the way small local models do: fenced blocks, in any order.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class _Server(ThreadingHTTPServer):
    request_queue_size = 256  # many clients connect at once under load (the default is 5)


@dataclass
class Answer:
    status: int = 200
    content: str | None = None
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    prompt_tokens: int = 100
    completion_tokens: int = 50
    finish_reason: str = "stop"


DEFAULT_CHECKS = [
    {"name": "check_defines_run", "code": "def check_defines_run():\n    assert callable(run)\n"}
]


def answer_json(
    *,
    code: str,
    name: str = "count_lines",
    title: str = "Count lines",
    summary: str = "Counts the lines of the input file.",
    change_summary: str = "",
    formats: tuple[str, ...] = ("txt",),
    checks: list[dict[str, str]] | None = None,
    replaced_checks: list[dict[str, str]] | None = None,
) -> str:
    return json.dumps(
        {
            "name": name,
            "title": title,
            "summary": summary,
            "inputs": {"description": "a text file", "formats": list(formats)},
            "outputs": {"description": "the number of lines", "formats": ["json"]},
            "code": code,
            "checks": DEFAULT_CHECKS if checks is None else checks,
            "replaced_checks": replaced_checks or [],
            "change_summary": change_summary,
        }
    )


COUNT_LINES = (
    "def run(input_path):\n"
    "    with open(input_path, encoding='utf-8') as f:\n"
    "        return {'lines': sum(1 for _ in f)}\n"
)


def markdown_answer(
    *,
    code: str,
    checks: str = "",
    metadata: dict[str, Any] | None = None,
    metadata_first: bool = False,
    prose: str = "Here is the module.",
) -> str:
    """A chat-style answer: prose, a ```python block (and one for the checks), a ```json block."""
    meta = (
        metadata
        if metadata is not None
        else {
            "name": "count_lines",
            "title": "Count lines",
            "summary": "Counts the lines of the input file.",
            "inputs": {"description": "a text file", "formats": ["txt"]},
            "outputs": {"description": "the number of lines", "formats": ["json"]},
        }
    )
    blocks = [f"```python\n{code}```"]
    if checks:
        blocks.append(f"And its checks:\n\n```python\n{checks}```")
    meta_block = f"```json\n{json.dumps(meta, indent=2)}\n```"
    parts = [meta_block, *blocks] if metadata_first else [*blocks, meta_block]
    return prose + "\n\n" + "\n\n".join(parts) + "\n"


def rejection(kind: str, style: str) -> tuple[int, dict[str, Any]]:
    """The 400 a real server sends for a ``response_format`` of type ``kind`` it refuses."""
    if style == "vllm":
        message = f"response_format type '{kind}' is not supported by this model"
        return 400, {
            "object": "error",
            "message": message,
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    if style == "lmstudio":
        return 400, {"error": "'response_format.type' must be 'json_schema' or 'text'"}
    if style == "bad_schema":  # OpenAI's answer to a json_schema it cannot compile
        message = (
            "Invalid schema for response_format 'taskbot_code': In context=(), "
            "'additionalProperties' is required to be supplied and to be false."
        )
        return 400, {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": "response_format",
                "code": None,
            }
        }
    if style == "unknown_param":
        message = "Unrecognized request argument supplied: response_format"
        return 400, {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": None,
            }
        }
    message = (
        f"Invalid parameter: 'response_format' of type '{kind}' is not supported with this model."
    )
    return 400, {
        "error": {
            "message": message,
            "type": "invalid_request_error",
            "param": "response_format",
            "code": None,
        }
    }


class FakeOpenAIServer:
    def __init__(
        self,
        *,
        model: str = "fake-model-1",
        rejects: tuple[str, ...] = (),
        reject_style: str = "openai",
        usage: bool = True,
    ) -> None:
        self.model = model
        self.rejects = set(rejects)
        self.reject_style = reject_style
        self.usage = usage
        self.rejected = 0
        self.answers: deque[Answer] = deque()
        self.default: Answer | None = None  # given when the queue is empty (None: a 500)
        self.requests: list[dict[str, Any]] = []
        self.served_tokens = 0  # prompt + completion tokens reported in every answer given
        self.headers: list[dict[str, str]] = []
        self._lock = threading.Lock()
        self._server = _Server(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- scripting ------------------------------------------------------------------------

    def reply(self, content: str, **kwargs: Any) -> None:
        self.answers.append(Answer(content=content, **kwargs))

    def reply_code(
        self, code: str, *, prompt_tokens: int = 100, completion_tokens: int = 50, **kwargs: Any
    ) -> None:
        self.reply(
            answer_json(code=code, **kwargs),
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        )

    def reply_markdown(self, code: str, **kwargs: Any) -> None:
        """Answer with fenced blocks instead of JSON (``markdown_answer``'s arguments)."""
        self.reply(markdown_answer(code=code, **kwargs))

    def reply_by_default(self, content: str, **kwargs: Any) -> None:
        """Answer ``content`` whenever no answer is queued (load tests: every request gets one)."""
        self.default = Answer(content=content, **kwargs)

    def fail(
        self, status: int, *, message: str = "boom", headers: dict[str, str] | None = None
    ) -> None:
        body = {"error": {"message": message, "type": "server_error", "code": None}}
        self.answers.append(Answer(status=status, body=body, headers=headers or {}))

    def stall(self, seconds: float, content: str | None = None) -> None:
        self.answers.append(Answer(content=content or "{}", delay=seconds))

    # --- inspection -----------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def user_texts(self, index: int = -1) -> str:
        """Everything the user role said in request ``index``."""
        messages = self.requests[index]["messages"]
        return "\n".join(m["content"] for m in messages if m["role"] == "user")

    def all_text(self, index: int = -1) -> str:
        return "\n".join(m["content"] for m in self.requests[index]["messages"])

    # --- lifecycle ------------------------------------------------------------------------

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _next(self, body: dict[str, Any], headers: dict[str, str]) -> Answer:
        with self._lock:
            self.requests.append(body)
            self.headers.append(headers)
            kind = (body.get("response_format") or {}).get("type")
            if kind in self.rejects:
                self.rejected += 1
                status, error = rejection(str(kind), self.reject_style)
                return Answer(status=status, body=error)
            if self.answers:
                return self.answers.popleft()
            if self.default is not None:
                return self.default
        return Answer(status=500, body={"error": {"message": "fake server: no answer queued"}})

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                answer = fake._next(
                    json.loads(raw), {k.lower(): v for k, v in self.headers.items()}
                )
                if answer.delay:
                    time.sleep(answer.delay)
                if answer.status != 200:
                    self._send(answer.status, answer.body or {}, answer.headers)
                    return
                usage = {
                    "prompt_tokens": answer.prompt_tokens,
                    "completion_tokens": answer.completion_tokens,
                    "total_tokens": answer.prompt_tokens + answer.completion_tokens,
                }
                if fake.usage:
                    with fake._lock:
                        fake.served_tokens += answer.prompt_tokens + answer.completion_tokens
                self._send(
                    200,
                    {
                        "id": "chatcmpl-fake",
                        "object": "chat.completion",
                        "created": int(time.time()),
                        "model": fake.model,
                        "choices": [
                            {
                                "index": 0,
                                "message": {"role": "assistant", "content": answer.content},
                                "finish_reason": answer.finish_reason,
                            }
                        ],
                        **({"usage": usage} if fake.usage else {}),
                    },
                )

            def _send(
                self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
            ) -> None:
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in (headers or {}).items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

        return Handler
