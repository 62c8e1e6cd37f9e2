from __future__ import annotations

from pathlib import Path

import pytest

from bot.config import ConfigError, Settings
from bot.env_files import SETTINGS, example_env

ROOT = Path(__file__).resolve().parents[2]


def test_example_env_lists_every_setting_with_its_default() -> None:
    assert (ROOT / ".example.env").read_text() == example_env()
    for setting in SETTINGS:
        assert f"\n{setting.name}={setting.default}\n" in example_env()


def test_defaults_match_the_product() -> None:
    s = Settings.from_env({})
    assert s.database_url.startswith("sqlite:///")
    assert s.task_queue == "local"
    assert s.sandbox_packages[:2] == ("numpy", "pandas") and "matplotlib" in s.sandbox_packages
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


def test_a_relative_sqlite_path_in_env_file_is_relative_to_that_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.env_files import load_settings

    for setting in SETTINGS:
        monkeypatch.delenv(setting.name, raising=False)
    project = tmp_path / "project"
    project.mkdir()
    (project / ".env").write_text("DATABASE_URL=sqlite:///data/tasks.db\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(project / ".env")
    assert settings.database_url == f"sqlite:///{project / 'data' / 'tasks.db'}"
    monkeypatch.setenv("DATABASE_URL", "sqlite:///mine.db")  # typed here: relative to here
    assert load_settings(project / ".env").database_url == f"sqlite:///{elsewhere / 'mine.db'}"
    monkeypatch.setenv("DATABASE_URL", "postgresql://u:p@db/x")
    assert load_settings(project / ".env").database_url == "postgresql://u:p@db/x"


def test_redaction_hides_secrets_and_url_passwords_only() -> None:
    from bot.env_files import redact_value

    assert redact_value("API_TOKEN", "abc") == "  # set (hidden)"
    assert redact_value("SLACK_CLIENT_SECRET", "") == "  # not set"
    assert redact_value("DATABASE_URL", "postgresql://bob@db/x") == "postgresql://bob@db/x"
    assert redact_value("DATABASE_URL", "postgresql://bob:pw@db:5432/x") == (
        "postgresql://bob:***@db:5432/x"
    )
    assert redact_value("OPENAI_BASE_URL", "https://api.openai.com/v1") == (
        "https://api.openai.com/v1"
    )


def test_every_setting_is_declared_once_with_its_doc_and_group() -> None:
    names = [s.name for s in SETTINGS]
    assert len(names) == len(set(names)) == len(Settings.model_fields)
    assert all(s.doc and s.group for s in SETTINGS), [s.name for s in SETTINGS if not s.group]
    assert "# --- Sandbox ---\n# Wall-clock limit of one run.\nSANDBOX_WALL_SECONDS=30\n" in (
        example_env()
    )


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"MODEL_PRICES": "llama=free"}, "MODEL_PRICES: 'llama=free' is not name=input/output"),
        ({"WORKER_CONCURRENCY": "2.5"}, "WORKER_CONCURRENCY must be a number, got '2.5'"),
        (
            {"BUDGET_USER_DAILY_USD": "1", "OPENAI_MODEL": "llama3.1:8b"},
            "BUDGET_USER_DAILY_USD is set but the price of 'llama3.1:8b' is unknown",
        ),
    ],
)
def test_bad_values_say_what_they_must_be(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError) as caught:
        Settings.from_env(env)
    assert needle in str(caught.value)
    assert "pydantic" not in str(caught.value) and "errors.pydantic.dev" not in str(caught.value)


def test_values_are_read_as_before() -> None:
    s = Settings.from_env(
        {
            "PORT": "  ",  # blank: the default
            "SANDBOX_PACKAGES": "",  # an empty list is a list: the standard library only
            "ALLOWED_USERS": " U1, ,U2 ",
            "WORKER_CONCURRENCY": "0",
            "LOG_LEVEL": "debug",
            "SANDBOX_INSECURE": "maybe",  # only an explicit yes turns isolation off
            "MODEL_PRICES": "llama3.1:8b=0/0",
            "BUDGET_USER_DAILY_USD": "1",
            "OPENAI_MODEL": "llama3.1:8b",
        }
    )
    assert (s.port, s.sandbox_packages, s.allowed_users) == (3000, (), ("U1", "U2"))
    assert (s.worker_concurrency, s.log_level, s.sandbox_insecure) == (1, "DEBUG", False)
    assert s.model_prices == (("llama3.1:8b", 0.0, 0.0),)
    assert Settings.from_env({"SANDBOX_INSECURE": "1"}).sandbox_insecure is True
