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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bot.services.validation import top_level_imports

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

    status: str
    result: bytes
    error_type: str | None
    error_message: str | None
    killed_reason: str | None


Execute = Callable[[str], Execution]


class CheckRunner(Protocol):
    def run_checks(self, code: str, checks: Sequence[Check]) -> CheckReport: ...


def parse_checks(raw: Any, *, allowed_packages: Iterable[str]) -> tuple[list[Check], str | None]:
    """The model's ``checks`` as Check values, or why they cannot be used."""
    if not isinstance(raw, list) or not raw:
        return [], "the answer has no `checks`: add 1 to 5 checks that exercise `run`"
    if len(raw) > MAX_CHECKS:
        return [], f"at most {MAX_CHECKS} checks, got {len(raw)}"
    allowed = set(allowed_packages)
    checks: list[Check] = []
    for item in raw:
        if not isinstance(item, Mapping):
            return [], "each check must be an object with `name` and `code`"
        name, code = str(item.get("name", "")), str(item.get("code", ""))
        problem = _check_problem(name, code, allowed)
        if problem:
            return [], f"check {name or '?'}: {problem}"
        if any(c.name == name for c in checks):
            return [], f"two checks are named {name}"
        checks.append(Check(name, code))
    return checks, None


def _check_problem(name: str, code: str, allowed: set[str]) -> str | None:
    if not _NAME.match(name):
        return "the name must look like check_something (lower case)"
    if len(code.encode()) > MAX_CHECK_BYTES:
        return f"over {MAX_CHECK_BYTES} bytes"
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return f"SyntaxError at line {exc.lineno}: {exc.msg}"
    functions = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == name]
    if not functions:
        return f"the code must define `def {name}():`"
    args = functions[0].args
    if len(args.posonlyargs) + len(args.args) - len(args.defaults) > 0:
        return f"`{name}` must take no arguments"
    imports, problems = top_level_imports(tree)
    bad = [m for m in imports if m not in sys.stdlib_module_names and m not in allowed]
    if bad:
        return f"imports not allowed: {', '.join(bad)}"
    return problems[0] if problems else None


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
        if outcome.status == "succeeded":
            try:
                raw = json.loads(outcome.result)
                results = tuple(
                    CheckResult(str(r["name"]), bool(r["ok"]), r.get("error")) for r in raw
                )
                return CheckReport(results, seconds)
            except (ValueError, KeyError, TypeError):
                reason = "the checks' results could not be read"
        elif outcome.status == "timed_out":
            reason = "the checks ran past the wall-time limit"
        elif outcome.status == "killed":
            reason = f"the checks were stopped: over the {outcome.killed_reason} limit"
        else:
            reason = f"{outcome.error_type}: {outcome.error_message}"
        return CheckReport(tuple(CheckResult(c.name, False, reason) for c in checks), seconds)
