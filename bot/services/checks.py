"""Self-checks: small functions the model writes with the code, run in the sandbox before a
version may become current.

A check is a function ``check_<something>()`` with no arguments: it writes its own sample input
in the current directory, calls ``run(...)`` and asserts on the result. Every check runs in a
fresh namespace holding the task's module, inside one sandboxed run (same limits as any run).
"""

from __future__ import annotations

import ast
import json
import re
import sys
import textwrap
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.services.model_output import parse_python
from bot.services.validation import top_level_imports
from storage.kinds import RunStatus

MAX_CHECKS = 8
MAX_CHECK_BYTES = 4000
_NAME = re.compile(r"^check_[a-z0-9_]{1,60}$")


@dataclass(frozen=True)
class Check:
    name: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"name": self.name, "code": self.code}


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "error": self.error}


@dataclass(frozen=True)
class CheckReport:
    results: tuple[CheckResult, ...]
    seconds: float
    cpu_seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return bool(self.results) and all(r.ok for r in self.results)

    @property
    def failures(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.ok)

    def describe_failures(self) -> str:
        return "; ".join(f"{r.name}: {r.error}" for r in self.failures)


@dataclass(frozen=True)
class Execution:
    """What the sandbox said about the harness run (a subset of a run's outcome)."""

    status: RunStatus
    result: bytes
    error_type: str | None
    error_message: str | None
    killed_reason: str | None
    cpu_seconds: float = 0.0


Execute = Callable[[str], Execution]


class CheckRunner(Protocol):
    def run_checks(self, code: str, checks: Sequence[Check]) -> CheckReport: ...


def _strip_fence(code: str) -> str:
    text = code.strip()
    match = re.fullmatch(r"```[A-Za-z0-9_+-]*\s*\n?(.*?)\n?```", text, flags=re.DOTALL)
    return textwrap.dedent(match.group(1) if match else code).strip("\n")


def _snake(text: str) -> str:
    return re.sub(r"_+", "_", re.sub(r"[^0-9a-z]+", "_", text.lower())).strip("_")


def _check_name(function: str) -> str:
    """``probe_task`` -> ``check_probe_task``; ``test_counts`` -> ``check_counts``."""
    base = _snake(function)
    for prefix in ("check_", "test_", "check", "test"):
        if base.startswith(prefix) and len(base) > len(prefix):
            base = base[len(prefix) :].strip("_")
            break
    return f"check_{base or 'it'}"[:66]


def _pieces(raw: Any) -> list[tuple[str, str]]:
    """(name hint, code) for every check in whatever shape the model wrote them."""
    if isinstance(raw, str):
        return [("", raw)]
    if isinstance(raw, Mapping):
        if isinstance(raw.get("code"), str):
            return [(str(raw.get("name") or ""), str(raw["code"]))]
        return [(str(k), str(v)) for k, v in raw.items() if isinstance(v, str)]
    if not isinstance(raw, list):
        return []
    pieces: list[tuple[str, str]] = []
    for item in raw:
        if isinstance(item, str):
            pieces.append(("", item))
        elif isinstance(item, Mapping):
            code = next(
                (
                    item[k]
                    for k in ("code", "source", "function", "test")
                    if isinstance(item.get(k), str)
                ),
                "",
            )
            pieces.append((str(item.get("name") or ""), str(code)))
    return pieces


def _zero_arg_functions(tree: ast.Module) -> list[str]:
    names = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            args = node.args
            if len(args.posonlyargs) + len(args.args) - len(args.defaults) == 0 and not [
                a for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is None
            ]:
                names.append(node.name)
    return names


def _functions_of(hint: str, code: str) -> tuple[str, list[str]] | str:
    """The code (wrapped in a function when it is bare statements) and the checks it defines,
    or why it cannot be used."""
    try:
        tree = parse_python(code)
    except SyntaxError as exc:
        return f"SyntaxError at line {exc.lineno}: {exc.msg}"
    functions = _zero_arg_functions(tree)
    if not functions:
        if any(isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef) for n in tree.body):
            return "it defines no function that takes no arguments"
        name = _check_name(hint or "it")
        code = f"def {name}():\n" + textwrap.indent(code, "    ")
        return code, [name]
    wanted = _snake(hint)
    if wanted and wanted in functions:
        return code, [wanted]
    if len(functions) == 1:
        return code, functions
    prefixed = [f for f in functions if f.startswith(("check", "test"))]
    return code, prefixed or functions[-1:]


def normalise_checks(raw: Any, *, allowed_packages: Iterable[str]) -> tuple[list[Check], list[str]]:
    """The model's ``checks`` made usable where they can be (a name taken from the function the
    code defines, ``check_`` prefixed, fences and indentation removed, bare statements wrapped),
    and a note for each one that could not be used. Never an error: the code stands on its own."""
    allowed = set(allowed_packages)
    checks: list[Check] = []
    notes: list[str] = []
    pieces = _pieces(raw)
    if not pieces:
        return [], ["the model wrote no checks"]
    for hint, raw_code in pieces:
        code = _strip_fence(raw_code)
        label = hint.strip() or "a check"
        if not code.strip():
            notes.append(f"{label}: empty")
            continue
        found = _functions_of(hint.strip(), code)
        if isinstance(found, str):
            notes.append(f"{label}: {found}")
            continue
        code, functions = found
        for function in functions:
            name = function if _NAME.match(function) else _check_name(function)
            body = code if name == function else f"{code.rstrip()}\n\n{name} = {function}\n"
            if any(c.name == name for c in checks):
                notes.append(f"{name}: a second check of that name was left out")
                continue
            problem = _check_problem(name, body, allowed)
            if problem:
                notes.append(f"{name}: {problem}")
                continue
            checks.append(Check(name, body))
    if len(checks) > MAX_CHECKS:
        notes.append(f"only the first {MAX_CHECKS} of {len(checks)} checks were kept")
        checks = checks[:MAX_CHECKS]
    return checks, notes


def _check_problem(name: str, code: str, allowed: set[str]) -> str | None:
    if len(code.encode()) > MAX_CHECK_BYTES:
        return f"over {MAX_CHECK_BYTES} bytes"
    try:
        tree = parse_python(code)
    except SyntaxError as exc:
        return f"SyntaxError at line {exc.lineno}: {exc.msg}"
    if not any(
        isinstance(n, ast.FunctionDef | ast.Assign) and name in _defined(n) for n in tree.body
    ):
        return f"the code must define `{name}`"
    imports, problems = top_level_imports(tree)
    bad = [m for m in imports if m not in sys.stdlib_module_names and m not in allowed]
    if bad:
        return f"imports not allowed: {', '.join(bad)}"
    return problems[0] if problems else None


def _defined(node: ast.stmt) -> set[str]:
    if isinstance(node, ast.FunctionDef):
        return {node.name}
    if isinstance(node, ast.Assign):
        return {t.id for t in node.targets if isinstance(t, ast.Name)}
    return set()


def merge_kept(
    new: Sequence[Check], previous: Sequence[Check], replaced: Iterable[str]
) -> list[Check]:
    """The regression guard: earlier checks stay unless the model said it replaced them."""
    names = {c.name for c in new} | set(replaced)
    return [*new, *(c for c in previous if c.name not in names)]


def harness(code: str, checks: Sequence[Check]) -> str:
    """A module whose ``run(None)`` runs every check against ``code`` and returns the results."""
    pairs = ",\n    ".join(f"({c.name!r}, {c.code!r})" for c in checks)
    return f"""import traceback as _traceback

_TASK = {code!r}
_CHECKS = [
    {pairs}
]


def run(_input_path):
    results = []
    for name, source in _CHECKS:
        space = {{"__name__": "task"}}
        try:
            exec(compile(_TASK, "task.py", "exec"), space)
            exec(compile(source, name + ".py", "exec"), space)
            space[name]()
            results.append({{"name": name, "ok": True, "error": None}})
        except BaseException as exc:
            tail = " / ".join(_traceback.format_exc().strip().splitlines()[-3:])
            message = f"{{type(exc).__name__}}: {{exc}}".strip()
            error = (message + " | " + tail)[:600]
            results.append({{"name": name, "ok": False, "error": error}})
    return results
"""


class SandboxChecker:
    """Runs checks through anything that executes a generator-style module in the sandbox."""

    def __init__(self, execute: Execute) -> None:
        self._execute = execute

    def run_checks(self, code: str, checks: Sequence[Check]) -> CheckReport:
        started = time.perf_counter()
        outcome = self._execute(harness(code, checks))
        seconds = time.perf_counter() - started
        if outcome.status is RunStatus.SUCCEEDED:
            try:
                raw = json.loads(outcome.result)
                results = tuple(
                    CheckResult(str(r["name"]), bool(r["ok"]), r.get("error")) for r in raw
                )
                return CheckReport(results, seconds, outcome.cpu_seconds)
            except (ValueError, KeyError, TypeError):
                reason = "the checks' results could not be read"
        elif outcome.status is RunStatus.TIMED_OUT:
            reason = "the checks ran past the wall-time limit"
        elif outcome.status is RunStatus.KILLED:
            reason = f"the checks were stopped: over the {outcome.killed_reason} limit"
        else:
            reason = f"{outcome.error_type}: {outcome.error_message}"
        return CheckReport(
            tuple(CheckResult(c.name, False, reason) for c in checks), seconds, outcome.cpu_seconds
        )
