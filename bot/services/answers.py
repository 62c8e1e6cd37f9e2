"""The model's answer, read liberally: pure JSON, JSON among prose or in a fence, a reasoning
model's ``<think>`` block, or fenced ```python and ```json blocks in any order (pure)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from bot.services.model_output import (
    MAX_JSON_DEPTH,
    Unreadable,
    check_answer_size,
    json_depth,
    loads,
    parse_python,
    raw_decode,
)

_LANG = re.compile(r"[ \t]*([A-Za-z0-9_+-]*)")
_CODE_KEYS = ("code", "module", "source", "python", "function_code")


def _without_think(text: str) -> str:
    """``text`` without ``<think>...</think>`` blocks (one pass; an unclosed one is kept)."""
    lowered = text.lower()
    kept: list[str] = []
    position = 0
    while True:
        start = lowered.find("<think>", position)
        end = lowered.find("</think>", start) if start != -1 else -1
        if end == -1:
            kept.append(text[position:])
            return "".join(kept)
        kept.append(text[position:start])
        position = end + len("</think>")


def _fences(text: str) -> list[tuple[str, str]]:
    """Each fenced block as (language, body): from a ```lang line to the next ``` (one pass)."""
    found: list[tuple[str, str]] = []
    position = text.find("```")
    while position != -1:
        line_end = text.find("\n", position + 3)
        if line_end == -1:
            break
        close = text.find("```", line_end + 1)
        if close == -1:
            break
        language = _LANG.match(text, position + 3, line_end)
        found.append((language.group(1) if language else "", text[line_end + 1 : close]))
        position = text.find("```", close + 3)
    return found


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object found in ``text``: the whole text, else each ``{`` that starts one."""
    try:
        whole = loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = raw_decode(decoder, text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        index = text.find("{", end)
    return found


def _defines_run(code: str) -> bool:
    try:
        tree = parse_python(code)
    except SyntaxError:
        return "def run(" in code
    return any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body)


def _split_checks(code: str) -> tuple[str, list[dict[str, str]]]:
    """Top-level ``check_*`` functions written into the module itself, moved out as checks."""
    try:
        tree = parse_python(code)
    except SyntaxError:
        return code, []
    lines = code.splitlines(keepends=True)
    checks: list[dict[str, str]] = []
    drop: set[int] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith(("check_", "test_")):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)]) - 1
            last = node.end_lineno or node.lineno
            checks.append({"name": node.name, "code": "".join(lines[first:last])})
            drop.update(range(first, last))
    if not checks:
        return code, []
    kept = "".join(line for i, line in enumerate(lines) if i not in drop)
    return re.sub(r"\n{3,}", "\n\n", kept).strip("\n") + "\n", checks


def _code_of(value: Any) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    fenced = _fences(value) if value.lstrip().startswith("```") else []
    return fenced[0][1] if fenced else value


def parse_answer(content: str) -> tuple[dict[str, Any] | None, str | None]:
    """The answer as a dict with a ``code`` string, or the reason it cannot be used.

    Liberal in what it accepts: pure JSON; JSON inside a fence or among prose; a reasoning
    model's ``<think>`` block; or a ```python block (the module) with a ```json block of
    metadata and more ```python blocks of checks, in any order. Bounded: an answer too long,
    or JSON nested too deep, is a reason too (``bot.services.model_output``)."""
    try:
        return _parse(content)
    except Unreadable as exc:
        return None, str(exc)


def _parse(content: str) -> tuple[dict[str, Any] | None, str | None]:
    check_answer_size(content)
    text = _without_think(content).strip()
    if not text:
        return None, "the answer was empty; answer with the JSON object"
    if json_depth(text) > MAX_JSON_DEPTH:
        raise Unreadable(
            f"the answer nests deeper than {MAX_JSON_DEPTH} levels; answer with the flat "
            "JSON object of the schema"
        )
    try:
        whole = loads(text)
    except json.JSONDecodeError:
        whole = {}
    if not isinstance(whole, dict):
        return None, "the answer must be a JSON object"
    fences = [(lang.lower(), body) for lang, body in _fences(text)]
    objects = _objects(text) if not fences else []
    python: list[str] = []
    for lang, body in fences:
        if lang in ("json", "") and body.lstrip().startswith(("{", "[")):
            objects.extend(_objects(body))
        elif lang in ("python", "py", "python3", ""):
            python.append(body)
    data = next((o for o in objects if any(_code_of(o.get(k)) for k in _CODE_KEYS)), None)
    if data is None:
        data = next(iter(objects), None)
    data = dict(data) if data is not None else {}
    code = next((c for c in (_code_of(data.get(k)) for k in _CODE_KEYS) if c), None)
    extra_checks: list[dict[str, str]] = []
    if code is None and python:
        modules = [p for p in python if _defines_run(p)]
        code = modules[0] if modules else python[0]
        extra_checks = [{"name": "", "code": p} for p in python if p is not code]
    if code is None:
        if not objects and not fences:
            return None, "the answer is not valid JSON (no JSON object found)"
        return None, "the answer has no `code` string"
    if data.get("checks"):
        data["code"] = code
        return data, None
    code, inline_checks = _split_checks(code)
    data["code"] = code
    data["checks"] = inline_checks + extra_checks
    return data, None
