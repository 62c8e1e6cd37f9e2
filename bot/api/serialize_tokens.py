"""The audit as JSON (times in UTC, ISO 8601)."""

from __future__ import annotations

from typing import Any

from bot.services.audit import AuditPage


def serialize_audit(page: AuditPage) -> dict[str, Any]:
    return {
        "entries": [
            {
                "id": e.id,
                "at": e.at.isoformat(),
                "team_id": e.team_id,
                "user": e.user_id,
                "token_id": e.token_id,
                "token_name": e.token_name,
                "action": e.action,
                "target": e.target,
                "status": e.status,
                "outcome": e.outcome,
            }
            for e in page.entries
        ],
        "next_before": page.next_before,
    }
