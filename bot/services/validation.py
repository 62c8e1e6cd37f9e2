"""Static checks on generated code before a version is stored and before every run.

These are a quality gate, not the security boundary (that is the sandbox): they catch code that
cannot work here so the model can repair it, and they tell the user what the code imports.
"""

from __future__ import annotations

import ast
import importlib.util
import sys
from collections.abc import Iterable
from dataclasses import dataclass

from bot.services.model_output import parse_python


@dataclass(frozen=True)
class CodeCheck:
    ok: bool
    error: str | None
    imports: tuple[str, ...]


def top_level_imports(tree: ast.AST) -> tuple[tuple[str, ...], list[str]]:
    """Top-level module names imported anywhere in ``tree``, and problems found on the way."""
    names: set[str] = set()
    problems: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                problems.append(f"line {node.lineno}: relative imports are not possible here")
            elif node.module:
                names.add(node.module.split(".")[0])
        elif isinstance(node, ast.Call):
            dynamic = _dynamic_import(node)
            if dynamic is not None:
                if dynamic == "":
                    problems.append(f"line {node.lineno}: imports must name their module literally")
                else:
                    names.add(dynamic.split(".")[0])
    return tuple(sorted(names)), problems


def _dynamic_import(node: ast.Call) -> str | None:
    """The module ``__import__(...)`` or ``importlib.import_module(...)`` names; "" if computed."""
    func = node.func
    is_dunder = isinstance(func, ast.Name) and func.id == "__import__"
    is_importlib = (
        isinstance(func, ast.Attribute)
        and func.attr == "import_module"
        and isinstance(func.value, ast.Name)
        and func.value.id == "importlib"
    )
    if not (is_dunder or is_importlib):
        return None
    if node.args and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str):
        return node.args[0].value
    return ""


def _run_signature_error(tree: ast.Module) -> str | None:
    runs = [
        node
        for node in tree.body
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "run"
    ]
    if not runs:
        return "the module must define a top-level function `run(input_path)`"
    run = runs[-1]
    if isinstance(run, ast.AsyncFunctionDef):
        return "`run` must be a plain function, not `async def`"
    args = run.args
    positional = [*args.posonlyargs, *args.args]
    required = len(positional) - len(args.defaults)
    kw_required = [
        a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
    ]
    if kw_required:
        return f"`run` must take one argument; it also requires {', '.join(kw_required)}"
    if not positional and args.vararg is None:
        return "`run` must take one argument, the input path (None for generator tasks)"
    if required > 1:
        return f"`run` must take exactly one argument, it requires {required}"
    return None


def check_code(code: str, *, allowed_packages: Iterable[str], max_bytes: int) -> CodeCheck:
    """Parse ``code`` and check it defines ``run(x)`` and imports only what is allowed here."""
    size = len(code.encode("utf-8"))
    if size > max_bytes:
        return CodeCheck(False, f"the code is {size} bytes, over the limit of {max_bytes}", ())
    if not code.strip():
        return CodeCheck(False, "the code is empty", ())
    try:
        tree = parse_python(code, filename="task.py")
    except SyntaxError as exc:
        where = f"line {exc.lineno}" + (f", column {exc.offset}" if exc.offset else "")
        return CodeCheck(False, f"SyntaxError at {where}: {exc.msg}", ())
    imports, problems = top_level_imports(tree)
    allowed = set(allowed_packages)
    forbidden = [n for n in imports if n not in sys.stdlib_module_names and n not in allowed]
    if forbidden:
        extra = ", ".join(sorted(allowed)) or "none"
        problems.append(
            f"imports not allowed: {', '.join(forbidden)} "
            f"(only the standard library and these packages: {extra})"
        )
    missing = [n for n in imports if n in allowed and not is_installed(n)]
    if missing:
        problems.append(
            f"allowed but not installed on this server: {', '.join(missing)} "
            "(use another allowed package, or ask the operator to install it)"
        )
    signature = _run_signature_error(tree)
    if signature:
        problems.insert(0, signature)
    if problems:
        return CodeCheck(False, "; ".join(problems), imports)
    dependencies = tuple(name for name in imports if name != "__future__")
    return CodeCheck(True, None, dependencies)


def is_installed(module: str) -> bool:
    """Can a top-level module be imported here (found on the path, without importing it)?"""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
