"""Settings as files and lines: ``.env`` read (``load_settings``), ``.example.env`` written from
the declarations in ``bot.config`` (``example_env``), and the settings in use shown with secrets
hidden (``current_env``, ``python -m bot config``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from bot.config import Settings

__all__ = [
    "SETTINGS",
    "Setting",
    "anchor_sqlite",
    "current_env",
    "example_env",
    "find_env_file",
    "load_settings",
    "redact_value",
]


@dataclass(frozen=True)
class Setting:
    """One variable as ``.example.env`` shows it."""

    name: str
    default: str
    doc: str
    group: str


def _as_env(value: object) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, tuple):
        return ",".join(str(part) for part in value)
    return str(value)


def _group(extra: object) -> str:
    return str(extra.get("group", "")) if isinstance(extra, dict) else ""


SETTINGS: tuple[Setting, ...] = tuple(
    Setting(
        name.upper(),
        _as_env(field.default),
        field.description or "",
        _group(field.json_schema_extra),
    )
    for name, field in Settings.model_fields.items()
)


def example_env() -> str:
    """The text of ``.example.env``: every setting with its default and what it does."""
    lines = [
        "# Taskbot configuration. Copy to .env and fill in what you need.",
        "# Every variable is optional unless its line says otherwise; "
        "the value shown is the default.",
    ]
    group = ""
    for setting in SETTINGS:
        if setting.group != group:
            group = setting.group
            lines += ["", f"# --- {group} ---"]
        lines.append(f"# {setting.doc}")
        lines.append(f"{setting.name}={setting.default}")
    return "\n".join(lines) + "\n"


PROJECT_DIR = Path(__file__).resolve().parents[1]


def find_env_file() -> Path:
    """``.env`` in the current folder when there is one, else the project's."""
    here = Path.cwd() / ".env"
    return here if here.is_file() else PROJECT_DIR / ".env"


def anchor_sqlite(url: str, base: Path) -> str:
    """A relative SQLite path made absolute against ``base``; other URLs unchanged."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if Path(database).is_absolute() or database.startswith("file:"):
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def load_settings(env_file: Path | None = None) -> Settings:
    """Read ``.env`` (when present, never overriding the real environment), then the environment.

    A relative SQLite path is relative to the folder of the ``.env`` it came from, and the
    default database lives in the project folder, so ``./scripts/run.sh`` finds the same tasks
    from any folder; a relative path in the real environment is relative to the current folder.
    """
    from dotenv import load_dotenv

    env_file = env_file or find_env_file()
    from_environment = bool(os.environ.get("DATABASE_URL", "").strip())
    load_dotenv(env_file, override=False)
    settings = Settings.from_env()
    base = Path.cwd() if from_environment else env_file.resolve().parent
    return settings.model_copy(update={"database_url": anchor_sqlite(settings.database_url, base)})


_SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")


def redact_value(name: str, value: str) -> str:
    """What ``python -m bot config`` shows of a value: secrets as set or not, URL passwords
    hidden."""
    if any(word in name for word in _SECRET_WORDS):
        return "  # set (hidden)" if value else "  # not set"
    if "://" in value:
        from urllib.parse import urlsplit, urlunsplit

        try:
            parts = urlsplit(value)
            password = parts.password
        except ValueError:
            return "<unreadable URL>"
        if password is not None:
            user = parts.username or ""
            host = parts.netloc.rsplit("@", 1)[1]
            return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
    return value


def current_env(environ: Mapping[str, str] | None = None) -> str:
    """Every setting in use, as ``.env`` lines a user can copy, secrets redacted."""
    env = os.environ if environ is None else environ
    lines = ["# Taskbot settings in use; secrets and passwords in URLs are hidden."]
    for setting in SETTINGS:
        value = env.get(setting.name, setting.default).strip()
        lines.append(f"{setting.name}={redact_value(setting.name, value)}")
    return "\n".join(lines) + "\n"
