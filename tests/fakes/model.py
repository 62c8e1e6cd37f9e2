"""An in-memory ``CodeGenerator``: a queue of answers and a history of prompts (no IO)."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any

from bot.services.codegen import ChatMessage, ModelReply
from bot.services.errors import ModelUnavailable


class FakeCodeGenerator:
    def __init__(self, *answers: str | Exception, model: str = "fake-model") -> None:
        self.answers: deque[str | Exception] = deque(answers)
        self.prompts: list[list[ChatMessage]] = []
        self._model = model
        self._open = threading.Event()
        self._open.set()
        self._asked = threading.Condition()

    def hold(self) -> None:
        """Calls from now on wait (as a slow model does) until ``release``."""
        self._open.clear()

    def release(self) -> None:
        self._open.set()

    @property
    def model_name(self) -> str:
        return self._model

    def queue(self, *answers: str | Exception) -> None:
        self.answers.extend(answers)

    def wait_for_prompts(self, count: int, *, timeout: float = 30.0) -> bool:
        """Block until the model was asked ``count`` times (woken by each call); False when
        ``timeout`` seconds passed first."""
        with self._asked:
            return self._asked.wait_for(lambda: len(self.prompts) >= count, timeout)

    def generate(self, messages: Sequence[ChatMessage], *, schema: Mapping[str, Any]) -> ModelReply:
        with self._asked:
            self.prompts.append(list(messages))
            self._asked.notify_all()
        if not self._open.wait(60):
            raise ModelUnavailable("fake model: held for a minute")
        if not self.answers:
            raise ModelUnavailable("fake model: no answer queued")
        answer = self.answers.popleft()
        if isinstance(answer, Exception):
            raise answer
        return ModelReply(answer, self._model, input_tokens=10, output_tokens=20)
