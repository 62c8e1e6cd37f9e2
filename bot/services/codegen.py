"""The model behind code generation: a protocol and its one real adapter (the only openai import).

The adapter only talks to the model: it sends the conversation with a JSON schema for the answer
and returns the raw text and its token counts. Parsing, validation and repair rounds are the
service's business (``bot.services.generation``), so a fake model exercises them.

Servers differ in what they accept: the adapter asks for structured output (``json_schema``)
first; when a server answers that it does not support it (a 400 naming ``response_format``), it
falls back to JSON mode (``json_object``), then to plain text with the schema in the prompt, and
remembers what worked per base URL and model for the life of the process. Each fallback costs one
request, counted in the reply.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING, Any, Literal, Protocol

from bot.services.errors import ModelUnavailable

if TYPE_CHECKING:
    import openai

logger = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]
Mode = Literal["json_schema", "json_object", "text"]
MODES: tuple[Mode, ...] = ("json_schema", "json_object", "text")


@dataclass(frozen=True)
class ChatMessage:
    role: Role
    content: str


@dataclass(frozen=True)
class ModelReply:
    content: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str | None = None
    requests: int = 1  # HTTP requests this reply took (a rejected response_format adds one)
    mode: str = "json_schema"


class CodeGenerator(Protocol):
    """Something that answers a conversation with JSON matching ``schema``."""

    @property
    def model_name(self) -> str: ...

    def generate(
        self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]
    ) -> ModelReply: ...


_LEARNED: dict[tuple[str, str], Mode] = {}
_LEARNED_LOCK = threading.Lock()


def learned_mode(base_url: str, model: str) -> Mode | None:
    """The response format a server was found to accept in this process, if any."""
    with _LEARNED_LOCK:
        return _LEARNED.get((base_url, model))


def _learn(base_url: str, model: str, *, mode: Mode, reason: str) -> None:
    with _LEARNED_LOCK:
        if _LEARNED.get((base_url, model)) == mode:
            return
        _LEARNED[(base_url, model)] = mode
    logger.warning(
        "the model server at %s (model %s) rejected the response format: %s; using %s from now "
        "on for this process",
        base_url,
        model,
        reason[:300],
        mode,
    )


_SILENT: set[tuple[str, str]] = set()


def _no_usage(base_url: str, model: str) -> None:
    with _LEARNED_LOCK:
        if (base_url, model) in _SILENT:
            return
        _SILENT.add((base_url, model))
    logger.warning(
        "the model server at %s (model %s) reports no token usage: its tokens count as 0, so "
        "token and money budgets cannot limit it (CPU budgets still do)",
        base_url,
        model,
    )


def error_text(exc: openai.APIStatusError) -> str:
    """Everything a server said in an error, whatever its shape (OpenAI, vLLM, LM Studio...)."""
    try:
        body = json.dumps(exc.body)
    except (TypeError, ValueError):
        body = str(exc.body)
    return f"{exc.message} {body}"


_ALLOWED_LIST = ("must be", "supported values", "one of", "expected", "allowed")
_UNKNOWN_PARAMETER = (
    "unrecognized request argument",
    "unsupported parameter",
    "unknown parameter",
    "unknown field",
    "extra inputs are not permitted",
    "unexpected keyword",
)


def fallback_mode(current: Mode, text: str, *, status: int) -> Mode | None:
    """The mode to try after ``current`` was rejected with ``text``; None if the error is not
    about the response format (then it is a real error)."""
    lowered = text.lower()
    if status not in (400, 422) or current == "text":
        return None
    if not any(
        w in lowered
        for w in (
            "response_format",
            "json_schema",
            "json_object",
            "json mode",
            "structured output",
            "guided",
        )
    ):
        return None
    later = list(MODES[MODES.index(current) + 1 :])
    if any(w in lowered for w in _ALLOWED_LIST):
        # "'response_format.type' must be 'json_schema' or 'text'": pick the best one named.
        named = [m for m in later if f"'{m}'" in lowered or f'"{m}"' in lowered or m in lowered]
        if named:
            return named[0]
    if any(w in lowered for w in _UNKNOWN_PARAMETER):
        # The parameter itself is unknown: JSON mode would be refused the same way.
        return "text"
    if current == "json_schema" and "invalid schema" in lowered:
        # The server takes structured output but not this schema: JSON mode will do.
        return "json_object"
    # A format refused without naming one it takes: plain text (the schema in the prompt, the
    # answer read liberally) works on every server, so a fallback costs one request, never two.
    return "text"


def format_instructions(schema: Mapping[str, Any]) -> str:
    """For servers that do not take the schema: the schema goes into the prompt instead."""
    return (
        "Answer with one JSON object that follows this JSON schema (no other text):\n"
        + json.dumps(dict(schema), separators=(",", ":"))
    )


def _sdk() -> ModuleType:
    """The openai package, imported on first use: it is about 45 MiB and a second of start-up
    that a web process which never generates (Slack's ack path) does not pay."""
    import openai

    return openai


class OpenAICodeGenerator:
    """Any OpenAI-compatible chat completions server, through the official SDK."""

    def __init__(
        self,
        *,
        api_key: str,
        base_url: str,
        model: str,
        timeout: float = 60.0,
        max_retries: int = 2,
        response_format: Mode = "json_schema",
    ) -> None:
        self._model = model
        self._no_key = "" if api_key else "OPENAI_API_KEY is not set: put the key in .env. "
        self._base_url = base_url
        self._first_mode: Mode = response_format
        # Every HTTP request is counted, the SDK's own retries included, per calling thread.
        self._sent = threading.local()
        self._options = (api_key or "not-set", timeout, max_retries)
        self._made: openai.OpenAI | None = None
        self._making = threading.Lock()

    @property
    def _client(self) -> openai.OpenAI:
        with self._making:
            if self._made is None:
                sdk = _sdk()
                api_key, timeout, max_retries = self._options
                self._made = sdk.OpenAI(
                    api_key=api_key,
                    base_url=self._base_url,
                    timeout=timeout,
                    max_retries=max_retries,
                    http_client=sdk.DefaultHttpxClient(event_hooks={"request": [self._count]}),
                )
            return self._made

    def _count(self, _request: object) -> None:
        self._sent.value = getattr(self._sent, "value", 0) + 1

    @property
    def model_name(self) -> str:
        return self._model

    @property
    def mode(self) -> Mode:
        """The response format the next request uses."""
        return learned_mode(self._base_url, self._model) or self._first_mode

    @staticmethod
    def _payload(
        messages: Sequence[ChatMessage], schema: Mapping[str, Any], *, mode: Mode
    ) -> tuple[Any, Any]:
        sent: list[dict[str, str]] = [{"role": m.role, "content": m.content} for m in messages]
        if mode == "json_schema":
            response_format: Any = {
                "type": "json_schema",
                "json_schema": {"name": "taskbot_code", "strict": True, "schema": dict(schema)},
            }
            return sent, response_format
        sent.insert(
            1 if sent and sent[0]["role"] == "system" else 0,
            {"role": "system", "content": format_instructions(schema)},
        )
        if mode == "json_object":
            return sent, {"type": "json_object"}
        return sent, _sdk().omit

    def generate(self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]) -> ModelReply:
        openai = _sdk()
        mode = self.mode
        self._sent.value = 0
        while True:
            payload, response_format = self._payload(messages, schema, mode=mode)
            try:
                response = self._client.chat.completions.create(
                    model=self._model, messages=payload, response_format=response_format
                )
                break
            except (openai.BadRequestError, openai.UnprocessableEntityError) as exc:
                text = error_text(exc)
                fallback = fallback_mode(mode, text, status=exc.status_code)
                if fallback is None:
                    raise self._unavailable(exc, self._sent.value) from None
                _learn(self._base_url, self._model, mode=fallback, reason=exc.message)
                mode = fallback
            except openai.OpenAIError as exc:
                raise self._unavailable(exc, self._sent.value) from None
        requests = max(1, int(self._sent.value))
        if not response.choices:
            return ModelReply("", response.model or self._model, 0, 0, "empty", requests, mode)
        choice = response.choices[0]
        usage = response.usage
        if usage is None:
            _no_usage(self._base_url, self._model)
        content = choice.message.content
        if content is None and getattr(choice.message, "refusal", None):
            content = ""
        return ModelReply(
            content=content or "",
            model=response.model or self._model,
            input_tokens=(usage.prompt_tokens or 0) if usage else 0,
            output_tokens=(usage.completion_tokens or 0) if usage else 0,
            finish_reason=choice.finish_reason,
            requests=requests,
            mode=mode,
        )

    def _unavailable(self, exc: openai.OpenAIError, requests: int) -> ModelUnavailable:
        error = self._error(exc)
        error.requests = requests
        return error

    def _error(self, exc: openai.OpenAIError) -> ModelUnavailable:
        openai = _sdk()
        if isinstance(exc, openai.APITimeoutError):
            return ModelUnavailable(
                "The model server did not answer in time. Try again in a moment."
            )
        if isinstance(exc, openai.APIConnectionError):
            return ModelUnavailable(
                self._no_key
                + "The model server is unreachable. Check OPENAI_BASE_URL and the network."
            )
        if isinstance(exc, openai.AuthenticationError):
            return ModelUnavailable(
                self._no_key or "The model server refused the API key. Check OPENAI_API_KEY."
            )
        if isinstance(exc, openai.RateLimitError):
            return ModelUnavailable(
                "The model server is rate limiting us (429). Try again in a minute."
            )
        if isinstance(exc, openai.APIStatusError):
            logger.warning("model server answered %s: %s", exc.status_code, exc.message)
            return ModelUnavailable(
                f"The model server answered with an error ({exc.status_code}). Try again later."
            )
        logger.error("unexpected answer from the model server", exc_info=exc)
        return ModelUnavailable(f"The model server's answer could not be read: {exc}")
