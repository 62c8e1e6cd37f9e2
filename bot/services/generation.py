"""Prompts, the answer's schema, and the validate-and-repair loop around a ``CodeGenerator``."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from bot.services.answers import parse_answer
from bot.services.checks import Check, CheckResult, CheckRunner, merge_kept, normalise_checks
from bot.services.codegen import ChatMessage, CodeGenerator, ModelReply
from bot.services.errors import BudgetExceeded, GenerationFailed, ModelUnavailable
from bot.services.model_output import MAX_ANSWER_CHARS
from bot.services.steps import Progress, Step, StepEvent, no_progress
from bot.services.validation import check_code
from storage.kinds import TaskType

logger = logging.getLogger(__name__)


def answer_schema() -> dict[str, Any]:
    """The answer's JSON schema, from its pydantic model (imported on first generation, like
    the model's SDK: a web process that never generates does not hold pydantic)."""
    from bot.services.answer_schema import ANSWER_SCHEMA

    return ANSWER_SCHEMA


PROMPT_VERSION = "2026-12-01.1"
MAX_REPAIR_ROUNDS = 2

_TYPE_RULES: dict[str, str] = {
    TaskType.PASSTHROUGH: (
        "The task type is passthrough: `run(input_path)` is called with the path (a str) of "
        "one input file the user supplied, and returns the result."
    ),
    TaskType.GENERATOR: (
        "The task type is generator: `run(input_path)` is called with None (there is no input) "
        "and returns the result."
    ),
}


def system_prompt(*, task_type: str, packages: Sequence[str]) -> str:
    allowed = ", ".join(packages) if packages else "none"
    return "\n".join(
        [
            "You write one small, self-contained Python 3.11 module for Taskbot, which runs it "
            "in a sandbox on files people share in Slack.",
            "Rules:",
            "- Define a top-level function `run(input_path)` taking exactly one argument.",
            f"- {_TYPE_RULES.get(task_type, _TYPE_RULES[TaskType.PASSTHROUGH])}",
            "- Return JSON-serialisable data (a list of flat records shows as a table), a str, or "
            "bytes. Files written under the relative directory `output/` are also shown to the "
            "user (images inline, several as one gallery; .xlsx and .csv by their names).",
            "- A chart: matplotlib (Agg backend, already set), `fig, ax = plt.subplots(figsize="
            "(10, 6), dpi=100)`, a title, labelled axes with units, readable tick labels "
            "(rotate long ones), `fig.tight_layout()`, `fig.savefig('output/<name>.png')`, "
            "`plt.close(fig)`; return a short summary of what it shows.",
            "- Read spreadsheets with pandas.read_excel (openpyxl; `sheet_name=None` for every "
            "sheet), parquet with pandas.read_parquet (pyarrow), PDF text with pypdf, docx "
            "with python-docx (`import docx`), images with pillow (`from PIL import Image`).",
            "- Import only the Python standard library and these packages: "
            f"{allowed}. Nothing else is installed.",
            "- The code has no network, no environment variables and no files but its input and "
            "`output/`; it is stopped after 30 seconds or 512 MiB. Do not call input().",
            "- Handle the formats the user is likely to give (say which in `inputs.formats`) "
            "and fail with a clear exception message when the input cannot be used.",
            "- Prove the code works: write 1 to 5 `checks`, each a function `check_<what>()` "
            "with no arguments and its own imports. A check writes a small sample input file in "
            "the current directory (for a generator, it calls `run(None)`), calls `run` (already "
            "defined where the check runs) and asserts on the result. Checks run in the same "
            "sandbox before the user sees the code; a failing check is sent back to you.",
            "Answer with JSON only, matching the schema: name (snake_case), title, summary, "
            "inputs, outputs, code (the whole module), checks, replaced_checks and "
            "change_summary.",
        ]
    )


def create_messages(
    *, description: str, task_type: str, packages: Sequence[str]
) -> list[ChatMessage]:
    return [
        ChatMessage("system", system_prompt(task_type=task_type, packages=packages)),
        ChatMessage(
            "user",
            f"Task type: {task_type}\nWhat the user needs:\n{description}\n\n"
            "Leave change_summary and replaced_checks empty.",
        ),
    ]


def refine_messages(
    *,
    description: str,
    task_type: str,
    packages: Sequence[str],
    previous_number: int,
    previous_code: str,
    previous_metadata: Mapping[str, Any],
    feedback: str,
    last_error: str | None,
    previous_checks: Sequence[Check] = (),
    input_file: str | None = None,
) -> list[ChatMessage]:
    parts = [
        f"Task type: {task_type}",
        f"What the user first asked for:\n{description}",
        f"Version {previous_number}'s metadata:\n{json.dumps(previous_metadata, indent=2)}",
        f"Version {previous_number}'s code:\n```python\n{previous_code}\n```",
    ]
    if input_file:  # the last run's file: make the code fit the real thing
        parts.append(f"The last run's input. {input_file}")
    if previous_checks:
        listed = "\n\n".join(f"# {c.name}\n{c.code}" for c in previous_checks)
        parts.append(
            f"Version {previous_number}'s checks (they all passed):\n```python\n{listed}\n```\n"
            "They are kept and run against the new code unless you list them in "
            "replaced_checks with the reason (only when the user's request changes what they "
            "test). Add checks for what the request changes."
        )
    if last_error:
        parts.append(f"The last run of version {previous_number} failed:\n{last_error}")
    parts.append(f"The user's request for the next version:\n{feedback}")
    parts.append(
        "Write the next version: the whole module again, changed as the user asks (fix the "
        "failure above if they ask to fix it). In change_summary, say in one or two sentences "
        "what changed."
    )
    return [
        ChatMessage("system", system_prompt(task_type=task_type, packages=packages)),
        ChatMessage("user", "\n\n".join(parts)),
    ]


@dataclass(frozen=True)
class Generated:
    code: str
    name: str
    title: str
    summary: str
    inputs: Mapping[str, Any]
    outputs: Mapping[str, Any]
    dependencies: tuple[str, ...]
    change_summary: str
    model: str
    input_tokens: int
    output_tokens: int
    model_requests: int
    errors: tuple[str, ...] = field(default=())
    checks: tuple[Check, ...] = ()
    check_results: tuple[CheckResult, ...] = ()
    replaced_checks: tuple[tuple[str, str], ...] = ()
    checks_passed: bool = True
    check_seconds: float = 0.0
    check_cpu_seconds: float = 0.0
    response_mode: str = ""  # json_schema, json_object or text: what the server accepted

    @property
    def spent(self) -> Tally:
        return Tally(
            model=self.model,
            input_tokens=self.input_tokens,
            output_tokens=self.output_tokens,
            model_requests=self.model_requests,
            check_cpu_seconds=self.check_cpu_seconds,
            mode=self.response_mode,
        )


def snake_case(text: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z]+", "_", text).strip("_").lower()
    name = re.sub(r"_+", "_", name)
    if not name or not name[0].isalpha():
        name = f"task_{name}".rstrip("_")
    return name[:60]


def _io(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        formats = value.get("formats", [])
        return {
            "description": str(value.get("description", "")),
            "formats": [str(f) for f in formats] if isinstance(formats, list) else [],
        }
    return {"description": str(value or ""), "formats": []}


def _replaced(raw: Any) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, list):
        return ()
    return tuple(
        (str(item.get("name", "")), str(item.get("reason", "")))
        for item in raw
        if isinstance(item, Mapping) and item.get("name")
    )


@dataclass
class Tally:
    """What one generation has spent so far; kept up to date as it goes, so what a failed
    generation spent is known too."""

    model: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    model_requests: int = 0
    check_cpu_seconds: float = 0.0
    mode: str = ""

    def add(self, reply: ModelReply) -> None:
        self.model = reply.model or self.model
        self.input_tokens += reply.input_tokens
        self.output_tokens += reply.output_tokens
        self.model_requests += reply.requests
        self.mode = reply.mode


class Generation:
    """Asks the model, checks the answer, and sends errors back for at most two repair rounds."""

    def __init__(
        self,
        generator: CodeGenerator,
        *,
        packages: Sequence[str],
        max_code_bytes: int,
        max_repairs: int = MAX_REPAIR_ROUNDS,
        checker: CheckRunner | None = None,
    ) -> None:
        self.checker = checker
        self.generator = generator
        self.packages = tuple(packages)
        self.max_code_bytes = max_code_bytes
        self.max_repairs = max_repairs

    def run(
        self,
        messages: Sequence[ChatMessage],
        *,
        previous_checks: Sequence[Check] = (),
        tally: Tally | None = None,
        before_repair: Callable[[], None] | None = None,
        progress: Progress = no_progress,
    ) -> Generated:
        """Ask, validate, run the checks; repair with the exact error, at most ``max_repairs``
        times. Code that never validates raises; code whose checks never pass comes back with
        ``checks_passed=False`` (the caller keeps it as a draft); valid code without usable
        checks comes back at once, unchecked. ``tally`` is kept up to date as requests are made;
        ``before_repair`` may refuse a repair round (a budget): then a draft is kept if there is
        one, else its error is raised."""
        spent = tally if tally is not None else Tally()
        history = list(messages)
        errors: list[str] = []
        draft: Generated | None = None
        for attempt in range(1 + self.max_repairs):
            if attempt and before_repair is not None:
                try:
                    before_repair()
                except BudgetExceeded:
                    if draft is None:
                        raise
                    break
            progress(StepEvent(Step.WRITING, "writing the code", attempt))
            try:
                reply = self.generator.generate(history, schema=answer_schema())
            except ModelUnavailable as exc:
                spent.model_requests += exc.requests
                raise
            spent.add(reply)
            candidate, error = self._read(reply, previous_checks)
            if candidate is not None:
                if self.checker is not None and candidate.checks:
                    count = len(candidate.checks)
                    progress(StepEvent(Step.CHECKING, f"running {count} checks", attempt))
                candidate = self._checked(candidate)
                if candidate.check_results:
                    passed = sum(1 for r in candidate.check_results if r.ok)
                    total = len(candidate.check_results)
                    progress(StepEvent(Step.CHECKED, f"{passed} of {total} checks passed", attempt))
                spent.check_cpu_seconds += candidate.check_cpu_seconds
                generated = replace(
                    candidate,
                    model=reply.model,
                    input_tokens=spent.input_tokens,
                    output_tokens=spent.output_tokens,
                    model_requests=spent.model_requests,
                    check_cpu_seconds=spent.check_cpu_seconds,
                    response_mode=reply.mode,
                    errors=tuple(errors),
                )
                if generated.checks_passed:
                    return generated
                draft = generated
                error = "these checks failed: " + "; ".join(
                    f"{r.name}: {r.error}" for r in generated.check_results if not r.ok
                )
            errors.append(error or "unusable answer")
            history.append(ChatMessage("assistant", reply.content[:MAX_ANSWER_CHARS]))
            history.append(
                ChatMessage(
                    "user",
                    f"That answer cannot be used: {errors[-1]}.\n"
                    "Answer again with the whole JSON object, fixing this.",
                )
            )
        if draft is not None and draft.code:
            return replace(
                draft,
                errors=tuple(errors),
                input_tokens=spent.input_tokens,
                output_tokens=spent.output_tokens,
                model_requests=spent.model_requests,
                check_cpu_seconds=spent.check_cpu_seconds,
            )
        raise GenerationFailed(
            f"The model's code was still invalid after {self.max_repairs} repair rounds: "
            f"{errors[-1]}",
            errors=tuple(errors),
        )

    def _read(
        self, reply: ModelReply, previous: Sequence[Check]
    ) -> tuple[Generated | None, str | None]:
        """The reply as an unchecked version, or the reason it cannot be one. Whatever shape
        the answer has ends here as a reason for the repair loop: the parsers are bounded
        (``bot.services.model_output``) and, should one still fail on a shape nobody foresaw,
        that failure is a reason too, never an exception that leaves a task ``generating``."""
        try:
            data, error = parse_answer(reply.content)
            if data is not None and reply.finish_reason == "length":
                data, error = None, "the answer was cut off; make the code shorter"
            if data is None:
                return None, error
            return self._candidate(data, previous)
        except (RecursionError, MemoryError, ValueError, TypeError) as exc:
            logger.warning("the model's answer could not be read: %s", type(exc).__name__)
            return None, (
                f"the answer could not be read ({type(exc).__name__}); answer with a short, "
                "flat JSON object"
            )

    def _candidate(
        self, data: Mapping[str, Any], previous: Sequence[Check]
    ) -> tuple[Generated | None, str | None]:
        """The answer as an unchecked version, or the exact reason it cannot be one."""
        check = check_code(
            data["code"], allowed_packages=self.packages, max_bytes=self.max_code_bytes
        )
        if not check.ok:
            return None, check.error
        checks, notes = normalise_checks(data.get("checks"), allowed_packages=self.packages)
        if notes:
            logger.info("checks left out of the answer: %s", "; ".join(notes))
        replaced = _replaced(data.get("replaced_checks"))
        kept = merge_kept(checks, previous, (name for name, _reason in replaced))
        return Generated(
            code=data["code"],
            name=snake_case(str(data.get("name") or data.get("title") or "task")),
            title=str(data.get("title") or data.get("name") or "Task"),
            summary=str(data.get("summary", "")),
            inputs=_io(data.get("inputs")),
            outputs=_io(data.get("outputs")),
            dependencies=check.imports,
            change_summary=str(data.get("change_summary", "")),
            model="",
            input_tokens=0,
            output_tokens=0,
            model_requests=0,
            checks=tuple(kept),
            replaced_checks=replaced,
        ), None

    def _checked(self, candidate: Generated) -> Generated:
        if self.checker is None or not candidate.checks:
            return candidate
        report = self.checker.run_checks(candidate.code, candidate.checks)
        return replace(
            candidate,
            check_results=report.results,
            checks_passed=report.passed,
            check_seconds=report.seconds,
            check_cpu_seconds=report.cpu_seconds,
        )
