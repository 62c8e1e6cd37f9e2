"""``/task token|tokens|revoke|audit`` parsed into what was asked (pure)."""

from __future__ import annotations

from bot.slack.commands import parse
from bot.slack.token_commands import TokenCommand


def test_token_takes_a_name_scopes_and_days_in_any_order() -> None:
    assert parse("token ci --scopes read,run --days 7") == TokenCommand(
        "token", name="ci", scopes="read,run", days=7
    )
    assert parse("token --days=3 laptop") == TokenCommand("token", name="laptop", days=3)
    assert parse("token") == TokenCommand("token")


def test_bad_token_commands_say_what_is_wrong() -> None:
    for text, problem in (
        ("token ci --days 0", "`--days` takes a number from 1 to 366."),
        ("token ci --days soon", "`--days` takes a number from 1 to 366."),
        ("token a b", "Usage: `/task token [name] [--scopes read,run,write] [--days N]`"),
        ("token ci --forever", "Usage: `/task token [name] [--scopes read,run,write] [--days N]`"),
        ("revoke", "Which token? `/task revoke <name>`"),
        ("tokens everyone", "Usage: `/task tokens` or `/task tokens all`"),
        ("audit yesterday", "Usage: `/task audit` or `/task audit <older-than-id>`"),
    ):
        parsed = parse(text)
        assert isinstance(parsed, TokenCommand) and parsed.problem == problem, text


def test_tokens_revoke_and_audit() -> None:
    assert parse("tokens all") == TokenCommand("tokens", everyone=True)
    assert parse("revoke ci") == TokenCommand("revoke", ref="ci")
    assert parse("audit 120") == TokenCommand("audit", before=120)
