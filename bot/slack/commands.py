"""Parsing ``/task`` command text into a small, typed command (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.slack import trigger_commands as triggers
from bot.slack.token_commands import TOKEN_USAGE, VERBS, TokenCommand, parse_token_command
from storage.kinds import TaskType

USAGE = (
    "*Taskbot* turns a plain-language request into a small Python program and runs it on your "
    "files.\n"
    "• `/task create <what you need>`: a new task (add `--type generator` when it needs no "
    "input file)\n"
    "• `/task run <id> [text]`: run it (the text becomes `input.txt`; without text, a task that "
    "needs a file asks for one)\n"
    "• `/task list`: this channel's recent tasks\n"
    "• `/task show <id> [vN]`: a version's metadata and code\n"
    "• `/task stop <id>`: stop a task's queued or running runs (or one run, by its id)\n"
    "• `/task delete <id>`: delete a task you created (asks first)\n"
    + triggers.USAGE_LINES
    + "• `/task usage [days]`: what was spent (tokens, money, sandbox CPU) and the budgets\n"
    f"{TOKEN_USAGE}\n"
    "• `/task help`: this message\n"
    "In a task's thread: drop files to run it on each, or reply in words to change it "
    '("fix it" works after a failed run). Ids can be shortened to their first 6 characters.'
)


@dataclass(frozen=True)
class Create:
    description: str
    task_type: TaskType


@dataclass(frozen=True)
class RunCommand:
    ref: str
    text: str | None


@dataclass(frozen=True)
class Show:
    ref: str
    version: int | None


@dataclass(frozen=True)
class Delete:
    ref: str


@dataclass(frozen=True)
class Stop:
    ref: str


@dataclass(frozen=True)
class ListTasks:
    pass


@dataclass(frozen=True)
class Usage:
    days: int = 1


@dataclass(frozen=True)
class Help:
    problem: str | None = None


Command = (
    Create
    | RunCommand
    | Show
    | Delete
    | Stop
    | ListTasks
    | Usage
    | Help
    | triggers.TriggerCommand
    | TokenCommand
)

_TYPE = re.compile(r"^--type(?:=|\s+)(\S+)\s*", re.IGNORECASE)


def parse(text: str) -> Command:
    words = text.strip().split(maxsplit=1)
    if not words:
        return Help()
    verb, rest = words[0].lower(), (words[1].strip() if len(words) > 1 else "")
    if verb == "create":
        task_type = TaskType.PASSTHROUGH
        match = _TYPE.match(rest)
        if match:
            word, rest = match.group(1).lower(), rest[match.end() :]
            try:
                task_type = TaskType(word)
            except ValueError:
                return Help(f"Unknown task type `{word}`: use `passthrough` or `generator`.")
        if not rest.strip():
            return Help("Say what the task should do: `/task create count the rows per country`.")
        return Create(rest.strip(), task_type)
    if verb == "run":
        parts = rest.split(maxsplit=1)
        if not parts:
            return Help("Which task? `/task run <id>`")
        return RunCommand(parts[0], parts[1] if len(parts) > 1 else None)
    if verb == "show":
        parts = rest.split()
        if not parts:
            return Help("Which task? `/task show <id> [vN]`")
        version = None
        if len(parts) > 1:
            match = re.fullmatch(r"v?(\d+)", parts[1], re.IGNORECASE)
            if not match:
                return Help(f"`{parts[1]}` is not a version: use e.g. `v2`.")
            version = int(match.group(1))
        return Show(parts[0], version)
    if verb == "delete":
        parts = rest.split()
        if len(parts) != 1:
            return Help("Which task? `/task delete <id>`")
        return Delete(parts[0])
    if verb == "stop":
        parts = rest.split()
        if len(parts) != 1:
            return Help("Which task or run? `/task stop <id>`")
        return Stop(parts[0])
    if verb == "list":
        return ListTasks()
    if verb == "usage":
        match = re.fullmatch(r"(\d{1,3})?(?:\s*d(?:ays?)?)?", rest.strip(), re.IGNORECASE)
        if not match or not 1 <= int(match.group(1) or 1) <= 366:
            return Help("`/task usage` takes a number of days (1 to 366), e.g. `/task usage 7`.")
        return Usage(int(match.group(1) or 1))
    if verb in triggers.VERBS:
        trigger = triggers.parse_trigger(verb, rest)
        return Help(trigger.text) if isinstance(trigger, triggers.Problem) else trigger
    if verb in VERBS:
        return parse_token_command(verb, rest)
    if verb == "help":
        return Help()
    return Help(f"I don't know `{verb}`.")
