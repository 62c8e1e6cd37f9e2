"""The model's answer, read liberally: pure JSON, JSON among prose or in a fence, a reasoning
model's ``<think>`` block, or fenced ```python and ```json blocks in any order (pure)."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

_THINK = re.compile(r"<think>.*?</think>", flags=re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n(.*?)```", flags=re.DOTALL)
_CODE_KEYS = ("code", "module", "source", "python", "function_code")


def _objects(text: str) -> list[dict[str, Any]]:
    """Every JSON object found in ``text``: the whole text, else each ``{`` that starts one."""
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict):
        return [whole]
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    index = text.find("{")
    while index != -1:
        try:
            value, end = decoder.raw_decode(text, index)
        except json.JSONDecodeError:
            index = text.find("{", index + 1)
            continue
        if isinstance(value, dict):
            found.append(value)
        index = text.find("{", end)
    return found


def _defines_run(code: str) -> bool:
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return "def run(" in code
    return any(isinstance(n, ast.FunctionDef) and n.name == "run" for n in tree.body)


def _split_checks(code: str) -> tuple[str, list[dict[str, str]]]:
    """Top-level ``check_*`` functions written into the module itself, moved out as checks."""
    try:
        tree = ast.parse(code)
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
    fenced = _FENCE.search(value)
    return fenced.group(2) if fenced and value.lstrip().startswith("```") else value


def parse_answer(content: str) -> tuple[dict[str, Any] | None, str | None]:
    """The answer as a dict with a ``code`` string, or the reason it cannot be used.

    Liberal in what it accepts: pure JSON; JSON inside a fence or among prose; a reasoning
    model's ``<think>`` block; or a ```python block (the module) with a ```json block of
    metadata and more ```python blocks of checks, in any order."""
    text = _THINK.sub("", content).strip()
    if not text:
        return None, "the answer was empty; answer with the JSON object"
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = {}
    if not isinstance(whole, dict):
        return None, "the answer must be a JSON object"
    fences = [(lang.lower(), body) for lang, body in _FENCE.findall(text)]
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
