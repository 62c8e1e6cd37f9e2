"""The manifest asks for exactly what the app uses, in the shape Slack's manifest schema
(slackapi/manifest-schema, version 1.0.0) accepts."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from bot.slack.clients import BOT_SCOPES

ROOT = Path(__file__).resolve().parents[2]

# The bot scope each Web API method the code calls needs (from each method's docs page), and
# the scope each subscribed event needs. None: no scope.
METHOD_SCOPES: dict[str, str | None] = {
    "chat_postMessage": "chat:write",
    "chat_update": "chat:write",
    "chat_postEphemeral": "chat:write",
    "chat_getPermalink": None,
    "views_open": None,
    "views_publish": None,
    "users_conversations": "channels:read",  # public channels; private ones: OTHER_SCOPES
    "chat_startStream": "chat:write",
    "chat_appendStream": "chat:write",
    "chat_stopStream": "chat:write",
    "files_info": "files:read",
    "files_upload_v2": "files:write",
    "users_info": "users:read",  # the schedule owner's time zone
    "conversations_replies": "channels:history",  # the newest file in a task's thread
    "conversations_members": "channels:read",  # and the three below for other channel kinds
}
EVENT_SCOPES: dict[str, str | None] = {
    "app_mention": "app_mentions:read",
    "message.channels": "channels:history",
    "message.groups": "groups:history",
    "message.im": "im:history",
    "message.mpim": "mpim:history",
    "app_home_opened": None,
    "app_uninstalled": None,
    "tokens_revoked": None,
    "function_executed": None,  # the Workflow Builder step
}
OTHER_SCOPES = {
    "commands",  # /task
    "files:read",  # downloading url_private_download with the bot token
    "groups:read",  # conversations.members / users.conversations of private channels, DMs
    "im:read",
    "mpim:read",
}
_CALL = re.compile(r"\.((?:chat|files|views|conversations|users|reactions|pins)_\w+)\(")


def manifest() -> dict:  # type: ignore[type-arg]
    return yaml.safe_load((ROOT / "manifest.yaml").read_text())


def called_methods() -> set[str]:
    found: set[str] = set()
    for path in (ROOT / "bot").rglob("*.py"):
        found |= set(_CALL.findall(path.read_text()))
    return found


def test_the_scopes_are_exactly_what_the_code_calls_and_hears() -> None:
    called = called_methods()
    assert called, "no Web API calls found"
    unknown = called - set(METHOD_SCOPES)
    assert not unknown, f"add the scope these need to METHOD_SCOPES: {unknown}"
    events = manifest()["settings"]["event_subscriptions"]["bot_events"]
    needed = {METHOD_SCOPES[m] for m in called} | {EVENT_SCOPES[e] for e in events}
    needed = {s for s in needed if s} | OTHER_SCOPES
    assert sorted(manifest()["oauth_config"]["scopes"]["bot"]) == sorted(needed)
    assert sorted(BOT_SCOPES) == sorted(needed)


def test_every_conversation_a_task_can_live_in_is_heard() -> None:
    events = manifest()["settings"]["event_subscriptions"]["bot_events"]
    assert set(events) == set(EVENT_SCOPES)  # channels, private channels, DMs, group DMs
    home = manifest()["features"]["app_home"]
    assert home["messages_tab_enabled"] is True and home["messages_tab_read_only_enabled"] is False


def test_the_manifest_has_the_shape_slack_accepts() -> None:
    m = manifest()
    assert set(m) <= {"display_information", "features", "oauth_config", "settings", "functions"}
    assert 1 <= len(m["display_information"]["name"]) <= 35
    assert len(m["display_information"]["description"]) <= 140
    features = m["features"]
    assert set(features) <= {"app_home", "bot_user", "slash_commands", "shortcuts"}
    assert set(features["app_home"]) <= {
        "home_tab_enabled",
        "messages_tab_enabled",
        "messages_tab_read_only_enabled",
    }
    assert all(isinstance(v, bool) for v in features["app_home"].values())
    assert 1 <= len(features["bot_user"]["display_name"]) <= 80
    for command in features["slash_commands"]:
        assert set(command) <= {"command", "url", "description", "usage_hint", "should_escape"}
        assert re.fullmatch(r"/\S{1,31}", command["command"])
        assert command["url"].startswith("https://") and len(command["usage_hint"]) <= 1000
    assert features["slash_commands"][0]["command"] == "/task"
    for shortcut in features["shortcuts"]:
        assert set(shortcut) == {"name", "type", "callback_id", "description"}
        assert shortcut["type"] in ("global", "message") and len(shortcut["name"]) <= 24
        assert len(shortcut["callback_id"]) <= 255 and len(shortcut["description"]) <= 150
    assert [s["callback_id"] for s in features["shortcuts"]] == ["run_on_file"]
    assert set(m["oauth_config"]) <= {"redirect_urls", "scopes"}
    assert m["oauth_config"]["redirect_urls"][0].endswith("/slack/oauth_redirect")
    scopes = m["oauth_config"]["scopes"]["bot"]
    assert len(scopes) == len(set(scopes)) and all(len(s) <= 50 for s in scopes)
    settings = m["settings"]
    subscriptions = settings["event_subscriptions"]
    assert set(subscriptions) <= {"request_url", "bot_events", "user_events"}
    events = subscriptions["bot_events"]
    assert len(events) == len(set(events)) <= 100 and all(len(e) <= 50 for e in events)
    assert settings["interactivity"]["is_enabled"] is True
    assert set(settings["interactivity"]) <= {
        "is_enabled",
        "request_url",
        "message_menu_options_url",
    }
    assert all(
        isinstance(settings[k], bool)
        for k in ("org_deploy_enabled", "socket_mode_enabled", "token_rotation_enabled")
    )
    assert settings["function_runtime"] in ("remote", "slack")


PARAMETER_TYPES = {
    "string",
    "integer",
    "number",
    "boolean",
    "object",
    "array",
    "slack#/types/user_id",
    "slack#/types/channel_id",
    "slack#/types/file_id",
    "slack#/types/rich_text",
    "slack#/types/timestamp",
    "slack#/types/options_select",
}


def test_the_workflow_step_is_declared_as_the_code_listens_for_it() -> None:
    from bot.slack.workflow_step import OPTIONS, STEP

    functions = manifest()["functions"]
    assert set(functions) == {STEP, OPTIONS}
    assert manifest()["settings"]["function_runtime"] == "remote"
    for callback_id, function in functions.items():
        assert re.fullmatch(r"[a-z0-9_]{1,100}", callback_id)
        assert set(function) <= {"title", "description", "input_parameters", "output_parameters"}
        assert 1 <= len(function["title"]) <= 255 and len(function["description"]) <= 4000
        for side in ("input_parameters", "output_parameters"):
            params = function[side]
            assert set(params) <= {"properties", "required"}
            assert set(params.get("required", ())) <= set(params["properties"])
            for param in params["properties"].values():
                assert param["type"] in PARAMETER_TYPES and param.get("title")
                options = param.get("dynamic_options")
                if options is not None:  # points at one of this app's functions
                    assert options["function"].removeprefix("#/functions/") in functions
                    assert options["selection_type"] in ("single", "multi", "key-value")
    step = functions[STEP]
    assert set(step["input_parameters"]["properties"]) == {"run_as", "task", "file", "text"}
    assert set(step["output_parameters"]["properties"]) == {"status", "result", "run_link"}


def test_procfile_roles() -> None:
    roles = dict(
        line.split(": ", 1) for line in (ROOT / "Procfile").read_text().splitlines() if line
    )
    assert roles == {
        "release": "python -m bot migrate",
        "web": "python -m bot serve",
        "worker": "python -m bot worker",
    }
