"""The slow half of ``/task token|tokens|revoke|audit``: ephemeral answers, Block Kit."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from bot.services.audit import AuditPage
from bot.services.principal import Principal, PrincipalKind, parse_scopes, scopes_text
from bot.services.tokens import IssuedToken, TokenView
from bot.slack.block_kit import Block, Message, context, escape_inline, section
from bot.slack.token_commands import IssueToken, ListTokens, RevokeToken, ShowAudit

if TYPE_CHECKING:
    from bot.slack.flows import SlackFlows
    from bot.slack.messages import Origin

SayBlocks = Callable[[Message], None]


def _when(at: datetime | None) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") if at else "never"


def issued_message(issued: IssuedToken) -> Message:
    token = issued.token
    text = f"Your token `{token.name}` (shown once; copy it now)."
    body: list[Block] = [
        section(
            f"*Your token `{token.name}`* acts as you: it sees and runs what you can in Slack. "
            "It is shown only this once; keep it like a password."
        ),
        {
            "type": "rich_text",
            "elements": [
                {
                    "type": "rich_text_preformatted",
                    "elements": [{"type": "text", "text": issued.secret}],
                }
            ],
        },
        context(
            f"scopes: {scopes_text(token.scopes)} · expires {_when(token.expires_at)} · "
            f"use: `Authorization: Bearer <token>`, or `TASKBOT_TOKEN=<token> python -m bot task "
            f"--server <url> list` · revoke: `/task revoke {token.name}`"
        ),
    ]
    return Message(text, body)


def tokens_message(tokens: Sequence[TokenView], *, now: datetime, everyone: bool) -> Message:
    if not tokens:
        return Message(
            "No tokens yet.", [section("No tokens yet: `/task token <name>` makes one.")]
        )
    lines = []
    for t in tokens[-40:]:
        state = (
            f"revoked {_when(t.revoked_at)}"
            if t.revoked_at
            else ("expired" if t.expires_at <= now else f"expires {_when(t.expires_at)}")
        )
        who = f"<@{t.user_id}> " if everyone else ""
        lines.append(
            f"• {who}`{t.name}` (`{t.id[:8]}`) {scopes_text(t.scopes)} · {state} · "
            f"last used {_when(t.last_used_at)}"
        )
    title = "The workspace's tokens" if everyone else "Your tokens"
    return Message(title, [section(f"*{title}*\n" + "\n".join(lines))])


def audit_message(page: AuditPage) -> Message:
    if not page.entries:
        return Message("No audit entries.", [section("No requests made with tokens (yet).")])
    lines = [
        f"`{e.id}` {_when(e.at)} <@{e.user_id}> `{escape_inline(e.token_name)}` "
        f"{escape_inline(e.action)}{' ' + escape_inline(e.target) if e.target else ''} "
        f"→ {e.status} {escape_inline(e.outcome)}"
        for e in page.entries
    ]
    body: list[Block] = [section("*Requests made with tokens*\n" + "\n".join(lines)[:2900])]
    if page.next_before is not None:
        body.append(context(f"Older: `/task audit {page.next_before}`"))
    return Message("Requests made with tokens", body)


def _as_person(flows: SlackFlows, origin: Origin) -> Principal:
    tokens = flows.services.tokens
    return Principal(
        kind=PrincipalKind.PERSON,
        team_id=origin.team_id,
        enterprise_id=origin.enterprise_id,
        user_id=origin.user_id,
        token_id=None,
        token_name="slack",
        scopes=frozenset(),
        admin=tokens.is_admin(origin.user_id),
    )


def issue(flows: SlackFlows, m: IssueToken, say_blocks: SayBlocks) -> None:
    flows.gate(m.origin)
    scopes = parse_scopes(m.scopes) if m.scopes is not None else None
    issued = flows.services.tokens.issue(
        team_id=m.origin.team_id,
        enterprise_id=m.origin.enterprise_id,
        user_id=m.origin.user_id,
        name=m.name,
        scopes=scopes,
        days=m.days,
    )
    say_blocks(issued_message(issued))


def list_tokens(flows: SlackFlows, m: ListTokens, say_blocks: SayBlocks) -> None:
    flows.gate(m.origin)
    tokens = flows.services.tokens.list(
        team_id=m.origin.team_id, user_id=m.origin.user_id, everyone=m.everyone
    )
    say_blocks(tokens_message(tokens, now=datetime.now(UTC), everyone=m.everyone))


def revoke(flows: SlackFlows, m: RevokeToken, say: Callable[[str], None]) -> None:
    flows.gate(m.origin)
    token = flows.services.tokens.revoke(m.ref, team_id=m.origin.team_id, user_id=m.origin.user_id)
    owner = "" if token.user_id == m.origin.user_id else f" of <@{token.user_id}>"
    say(f"Revoked token `{token.name}`{owner}: requests with it are refused from now on.")


def audit(flows: SlackFlows, m: ShowAudit, say_blocks: SayBlocks) -> None:
    flows.gate(m.origin)
    page = flows.services.audit.page(_as_person(flows, m.origin), before=m.before)
    say_blocks(audit_message(page))
