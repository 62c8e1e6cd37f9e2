"""The manifest asks for exactly what the app uses."""

from __future__ import annotations

from pathlib import Path

import yaml

from bot.slack.app import BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]


def test_manifest_matches_the_app() -> None:
    manifest = yaml.safe_load((ROOT / "manifest.yaml").read_text())
    assert manifest["features"]["slash_commands"][0]["command"] == "/task"
    assert sorted(manifest["oauth_config"]["scopes"]["bot"]) == sorted(BOT_SCOPES)
    events = manifest["settings"]["event_subscriptions"]["bot_events"]
    assert sorted(events) == ["app_mention", "message.channels", "message.groups", "message.im"]
    assert manifest["settings"]["interactivity"]["is_enabled"] is True
    assert manifest["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")


def test_procfile_roles() -> None:
    roles = dict(line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line)
    assert roles == {
        "release": "python -m bot migrate",
        "web": "python -m bot serve",
        "worker": "python -m bot worker",
    }
