"""Bounds on reading what a model sent: its size, how deep it nests, and parsers that turn
the errors hostile input provokes (RecursionError, MemoryError, null bytes) into a reason the
repair loop sends back, never an exception that escapes it (pure).

Every parse here is linear in the input: no regular expression that can backtrack over the
whole answer from each position, no retry from each ``{`` once the nesting is known too deep.
"""

from __future__ import annotations

import ast
import json
from typing import Any

# The largest answer read at all: code is limited far lower (CODE_MAX_BYTES), this only keeps
# the parsers' time and memory bounded. A model's output is a few thousand tokens.
MAX_ANSWER_CHARS = 1_000_000
# JSON deeper than this is not an answer (the schema's is 4 deep).
MAX_JSON_DEPTH = 64


class Unreadable(ValueError):
    """The model's output cannot be read safely; ``str()`` is the reason sent back to it."""


def check_answer_size(content: str) -> None:
    if len(content) > MAX_ANSWER_CHARS:
        raise Unreadable(
            f"the answer is {len(content)} characters, over the limit of {MAX_ANSWER_CHARS}; "
            "answer with a much shorter module"
        )


def json_depth(text: str, start: int = 0) -> int:
    """The deepest nesting of ``[``/``{`` outside strings in ``text[start:]`` (one pass)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text[start:] if start else text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}" and depth:
            depth -= 1
    return deepest


def _too_deep() -> Unreadable:
    return Unreadable(
        f"the answer's JSON nests deeper than {MAX_JSON_DEPTH} levels; answer with the flat "
        "JSON object of the schema"
    )


def loads(text: str) -> Any:
    """``json.loads`` for a model's text: ``json.JSONDecodeError`` as usual, ``Unreadable``
    when it nests too deep to be an answer."""
    try:
        return json.loads(text)
    except RecursionError:
        raise _too_deep() from None


def raw_decode(decoder: json.JSONDecoder, text: str, index: int) -> tuple[Any, int]:
    try:
        return decoder.raw_decode(text, index)
    except RecursionError:
        raise _too_deep() from None


def parse_python(code: str, *, filename: str = "task.py") -> ast.Module:
    """``ast.parse``, with every way hostile code makes the parser fail as a ``SyntaxError``
    (deep nesting, a 60 KB chain of ``+``, null bytes), so callers handle one error."""
    try:
        return ast.parse(code, filename=filename)
    except SyntaxError:
        raise
    except (RecursionError, MemoryError):
        raise SyntaxError(
            "the code nests too deeply for Python's parser: split long expressions up"
        ) from None
    except ValueError as exc:  # "source code string cannot contain null bytes"
        raise SyntaxError(str(exc)) from None
