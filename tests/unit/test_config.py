from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import SETTINGS, ConfigError, Settings, example_env

ROOT = Path(__file__).resolve().parents[2]


def test_example_env_lists_every_setting_with_its_default() -> None:
    assert (ROOT / ".example.env").read_text() == example_env()
    for setting in SETTINGS:
        assert f"\n{setting.name}={setting.default}\n" in example_env()


def test_defaults_match_the_product() -> None:
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.task_queue == "local"
    assert s.sandbox_packages == ("numpy", "pandas")
    assert (s.sandbox_wall_seconds, s.sandbox_cpu_seconds, s.sandbox_memory_mb) == (30, 20, 512)
    assert (s.sandbox_max_processes, s.sandbox_max_file_mb, s.sandbox_max_open_files) == (
        32,
        50,
        256,
    )
    assert (s.sandbox_max_output_kb, s.sandbox_max_input_mb) == (1024, 20)
    assert s == Settings()


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"PORT": "eighty"}, "PORT must be a number"),
        ({"TASK_QUEUE": "rabbit"}, "TASK_QUEUE must be"),
        ({"SANDBOX_MEMORY_MB": "-1"}, "must not be negative"),
        ({"OPENAI_RESPONSE_FORMAT": "xml"}, "OPENAI_RESPONSE_FORMAT"),
    ],
)
def test_bad_values_are_named(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Settings.from_env(env)


def test_missing_slack_settings_say_where_to_find_them() -> None:
    missing = Settings.from_env({}).missing_for_slack()
    assert any("SLACK_SIGNING_SECRET" in m and "Signing Secret" in m for m in missing)
    assert any("SLACK_BOT_TOKEN" in m for m in missing)
    ready = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_SIGNING_SECRET": "s"})
    assert ready.missing_for_slack() == []
    socket = Settings.from_env({"SLACK_BOT_TOKEN": "xoxb-1", "SLACK_APP_TOKEN": "xapp-1"})
    assert socket.missing_for_slack() == []
