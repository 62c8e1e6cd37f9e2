"""The model behind code generation: a protocol and its one real adapter (the only openai import).

The adapter only talks to the model: it sends the conversation with a JSON schema for the answer
(structured output) and returns the raw text and its token counts. Parsing, validation and repair
rounds are the service's business (``bot.services.generation``), so a fake model exercises them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import openai

from bot.services.errors import ModelUnavailable

logger = logging.getLogger(__name__)

Role = Literal["system", "user", "assistant"]


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


class CodeGenerator(Protocol):
    """Something that answers a conversation with JSON matching ``schema``."""

    @property
    def model_name(self) -> str: ...

    def generate(
        self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]
    ) -> ModelReply: ...


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
        response_format: Literal["json_schema", "json_object"] = "json_schema",
    ) -> None:
        self._model = model
        self._response_format = response_format
        self._no_key = "" if api_key else "OPENAI_API_KEY is not set: put the key in .env. "
        self._client = openai.OpenAI(
            api_key=api_key or "not-set",
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
        )

    @property
    def model_name(self) -> str:
        return self._model

    def _format(self, schema: Mapping[str, Any]) -> dict[str, Any]:
        if self._response_format == "json_object":
            return {"type": "json_object"}
        return {
            "type": "json_schema",
            "json_schema": {"name": "taskbot_code", "strict": True, "schema": dict(schema)},
        }

    def generate(self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]) -> ModelReply:
        payload: Any = [{"role": m.role, "content": m.content} for m in messages]
        response_format: Any = self._format(schema)
        try:
            response = self._client.chat.completions.create(
                model=self._model,
                messages=payload,
                response_format=response_format,
            )
        except openai.APITimeoutError:
            raise ModelUnavailable(
                "The model server did not answer in time. Try again in a moment."
            ) from None
        except openai.APIConnectionError:
            raise ModelUnavailable(
                self._no_key
                + "The model server is unreachable. Check OPENAI_BASE_URL and the network."
            ) from None
        except openai.AuthenticationError:
            raise ModelUnavailable(
                self._no_key or "The model server refused the API key. Check OPENAI_API_KEY."
            ) from None
        except openai.RateLimitError:
            raise ModelUnavailable(
                "The model server is rate limiting us (429). Try again in a minute."
            ) from None
        except openai.APIStatusError as exc:
            logger.warning("model server answered %s: %s", exc.status_code, exc.message)
            raise ModelUnavailable(
                f"The model server answered with an error ({exc.status_code}). Try again later."
            ) from None
        except openai.OpenAIError as exc:
            logger.exception("unexpected answer from the model server")
            raise ModelUnavailable(f"The model server's answer could not be read: {exc}") from None
        if not response.choices:
            return ModelReply("", response.model or self._model, 0, 0, "empty")
        choice = response.choices[0]
        usage = response.usage
        content = choice.message.content
        if content is None and choice.message.refusal:
            content = ""
        return ModelReply(
            content=content or "",
            model=response.model or self._model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason,
        )
