"""``/task token|tokens|revoke|audit``: parsing (pure) and the typed messages they become."""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.slack.messages import Message

TOKEN_USAGE = (
    "• `/task token [name] [--scopes read,run,write] [--days N]`: a personal token for the API, "
    "the terminal and MCP, acting as you (shown once)\n"
    "• `/task tokens`: your tokens (`/task tokens all`: the workspace's, for admins)\n"
    "• `/task revoke <name>`: revoke one of yours (admins: any token's id)\n"
    "• `/task audit [older-than-id]`: requests made with tokens (admins)"
)
VERBS = frozenset({"token", "tokens", "revoke", "audit"})

_SCOPES = re.compile(r"--scopes?(?:=|\s+)(\S+)", re.IGNORECASE)
_DAYS = re.compile(r"--days?(?:=|\s+)(\S+)", re.IGNORECASE)


@dataclass(frozen=True, kw_only=True)
class IssueToken(Message):
    name: str | None
    scopes: str | None  # as typed: "read,run"; checked by the service
    days: int | None


@dataclass(frozen=True, kw_only=True)
class ListTokens(Message):
    everyone: bool = False


@dataclass(frozen=True, kw_only=True)
class RevokeToken(Message):
    ref: str


@dataclass(frozen=True, kw_only=True)
class ShowAudit(Message):
    before: int | None = None


@dataclass(frozen=True)
class TokenCommand:
    """What the text asked for; ``problem`` when it cannot be understood."""

    verb: str
    name: str | None = None
    scopes: str | None = None
    days: int | None = None
    ref: str = ""
    everyone: bool = False
    before: int | None = None
    problem: str | None = None


def parse_token_command(verb: str, rest: str) -> TokenCommand:
    if verb == "token":
        scopes = days = None
        match = _SCOPES.search(rest)
        if match:
            scopes, rest = match.group(1), rest[: match.start()] + rest[match.end() :]
        match = _DAYS.search(rest)
        if match:
            if not match.group(1).isdigit() or not 1 <= int(match.group(1)) <= 366:
                return TokenCommand(verb, problem="`--days` takes a number from 1 to 366.")
            days, rest = int(match.group(1)), rest[: match.start()] + rest[match.end() :]
        words = rest.split()
        if len(words) > 1 or any(w.startswith("--") for w in words):
            return TokenCommand(
                verb, problem="Usage: `/task token [name] [--scopes read,run,write] [--days N]`"
            )
        return TokenCommand(verb, name=words[0] if words else None, scopes=scopes, days=days)
    if verb == "tokens":
        if rest.strip().lower() not in ("", "all"):
            return TokenCommand(verb, problem="Usage: `/task tokens` or `/task tokens all`")
        return TokenCommand(verb, everyone=rest.strip().lower() == "all")
    if verb == "revoke":
        words = rest.split()
        if len(words) != 1:
            return TokenCommand(verb, problem="Which token? `/task revoke <name>`")
        return TokenCommand(verb, ref=words[0])
    words = rest.split()
    if len(words) > 1 or (words and not words[0].isdigit()):
        return TokenCommand(verb, problem="Usage: `/task audit` or `/task audit <older-than-id>`")
    return TokenCommand(verb, before=int(words[0]) if words else None)


def to_message(command: TokenCommand, base: dict[str, object]) -> Message:
    if command.verb == "token":
        return IssueToken(
            name=command.name,
            scopes=command.scopes,
            days=command.days,
            **base,  # type: ignore[arg-type]
        )
    if command.verb == "tokens":
        return ListTokens(everyone=command.everyone, **base)  # type: ignore[arg-type]
    if command.verb == "revoke":
        return RevokeToken(ref=command.ref, **base)  # type: ignore[arg-type]
    return ShowAudit(before=command.before, **base)  # type: ignore[arg-type]
